"""Structured damage in the built-in presets: documented mask coverage, stage order, labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PHOTOS, small_photo

from degrade import Degrader, replay
from degrade.ops import get_op
from degrade.ops.damage import MASK_THRESHOLD
from degrade.presets import builtin_presets, load_preset

N = 48
IMAGES = [np.ascontiguousarray(small_photo(name, 128)[:128, :128]) for name in PHOTOS]


def render(name: str, n: int = N) -> list:
    d = Degrader(name)
    return [d(IMAGES[i % len(IMAGES)], np.random.default_rng(1000 + i)) for i in range(n)]


def has_structured(name: str) -> bool:
    preset = load_preset(name)
    entries = [e for stage in preset["stages"].values() for e in stage["ops"].values()]
    ops = [c["op"] for e in entries for c in e.get("one_of", {}).values()] + [e["op"] for e in entries if "op" in e]
    return any(get_op(op).structured for op in ops)


@pytest.mark.parametrize("name", builtin_presets())
def test_mask_coverage_within_documented_range(name: str) -> None:
    lo, hi = load_preset(name)["mask_coverage"]
    coverage = float(np.mean([(s.mask > 0).mean() for s in render(name)]))
    if not has_structured(name):
        assert (lo, hi) == (0.0, 0.0) and coverage == 0.0
        return
    assert 0.0 < lo < hi, f"{name} must document its mask coverage"
    assert lo <= coverage <= hi, f"{name}: mean mask coverage {coverage:.4f} outside documented [{lo}, {hi}]"


def test_structured_preset_changes_only_masked_pixels() -> None:
    """Each op moves an unmasked pixel less than MASK_THRESHOLD of the way to its damage colour; where the
    faint rims of several ops overlap their changes add up, so the bound scales with the op count."""
    d = Degrader("structured")
    for i in range(24):
        img = IMAGES[i % len(IMAGES)]
        plan = d.plan(np.random.default_rng(1000 + i), img.shape[:2])
        sample = d.render(img, plan)
        change = np.abs(sample.degraded.astype(int) - sample.clean).max(axis=2)
        outside = change[sample.mask == 0]
        assert outside.max(initial=0) <= len(plan.ops) * (MASK_THRESHOLD * 255 + 1)
        assert np.percentile(outside, 99.5) <= MASK_THRESHOLD * 255 + 1


def test_old_photo_damages_the_print_before_the_scan() -> None:
    assert list(load_preset("old-photo")["stages"]) == ["print", "damage", "scan"]


def test_scratch_detect_always_has_scratches() -> None:
    samples = render("scratch-detect")
    with_scratches = np.mean([(s.labels == 1).any() for s in samples])
    assert with_scratches >= 0.9, with_scratches


@pytest.mark.parametrize("name", ["structured", "scratch-detect", "bopbtl"])
def test_replay_reproduces_structured_damage(name: str) -> None:
    """A sample re-rendered from its JSON record has the same bytes, mask and labels."""
    d = Degrader(name)
    for i in range(6):
        img = IMAGES[i % len(IMAGES)]
        plan = d.plan(np.random.default_rng(50 + i), img.shape[:2])
        sample = d.render(img, plan)
        record = json.loads(json.dumps({"ops": plan.to_record()["ops"]}))
        again = replay(record, sample.clean)
        for kind in ("degraded", "mask", "labels"):
            np.testing.assert_array_equal(getattr(again, kind), getattr(sample, kind))
