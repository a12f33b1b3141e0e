"""The contract every structured (masked) damage op keeps, checked for all of them at once.

- The mask is exact: on a constant image an op changes only masked pixels, beyond the documented
  tolerance (`MASK_THRESHOLD` of the way to the damage colour), and every masked pixel changes.
- Params are plain JSON; apply is pure (same params -> same bytes, input untouched); sampling
  is deterministic in the seed; the mask matches the image size.
- Each op's severity levels damage more pixels from light to heavy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from degrade.ops import OPS
from degrade.ops.base import LABEL_NAMES
from degrade.ops.damage import MASK_THRESHOLD

STRUCTURED = sorted(name for name, op in OPS.items() if op.structured)
SHAPES = [(96, 128), (257, 191)]
SEEDS = range(6)


def grey(value: float, shape: tuple[int, int]) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.float32)


def config(name: str, level: str | None = None) -> dict:
    op = OPS[name]
    return {**op.defaults, **(op.severities.get(level, {}) if level else {})}


def draw(name: str, seed: int, shape: tuple[int, int], level: str | None = None) -> dict:
    return OPS[name].sample(np.random.default_rng(seed), shape, config(name, level))


def test_every_damage_kind_has_ops() -> None:
    labels = {OPS[name].label for name in STRUCTURED}
    assert labels == set(LABEL_NAMES) - {0}, "each label value is produced by at least one op"


@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize("shape", SHAPES)
def test_mask_is_exact_on_a_constant_image(name: str, shape: tuple[int, int]) -> None:
    img = grey(0.5, shape)
    masked_somewhere = False
    for seed in SEEDS:
        out, mask = OPS[name].apply(img, draw(name, seed, shape, "heavy"))
        assert out.shape == img.shape and out.dtype == np.float32
        assert mask.shape == shape and mask.dtype == bool
        change = np.abs(out - img).max(axis=2)
        # Outside the mask: less than MASK_THRESHOLD of the way to any colour in [0, 1] (at most 0.5 away).
        assert change[~mask].max(initial=0.0) <= MASK_THRESHOLD * 0.5 + 1e-4, f"{name}: unmasked pixel changed"
        if mask.any():
            masked_somewhere = True
            assert change[mask].min() >= 2.0 / 255.0, f"{name}: a masked pixel did not visibly change"
    assert masked_somewhere, f"{name}: heavy damage never masked anything in {len(SEEDS)} seeds"


@pytest.mark.parametrize("name", STRUCTURED)
def test_params_are_json_and_apply_is_pure(name: str) -> None:
    rng = np.random.default_rng(3)
    img = rng.random((80, 112, 3), dtype=np.float32)
    before = img.copy()
    params = draw(name, 11, img.shape[:2], "heavy")
    assert json.loads(json.dumps(params)) == params
    assert len(json.dumps(params)) < 4096, "records stay compact: geometry comes from a seed, not point lists"
    out1, mask1 = OPS[name].apply(img, params)
    out2, mask2 = OPS[name].apply(img, json.loads(json.dumps(params)))
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(mask1, mask2)


@pytest.mark.parametrize("name", STRUCTURED)
def test_sampling_is_deterministic_in_the_seed(name: str) -> None:
    shape = (120, 90)
    assert draw(name, 5, shape) == draw(name, 5, shape)
    assert any(draw(name, 5, shape) != draw(name, s, shape) for s in range(6, 12))


@pytest.mark.parametrize("name", STRUCTURED)
def test_severity_levels_increase_damage(name: str) -> None:
    op = OPS[name]
    assert set(op.severities) == {"light", "moderate", "heavy"}, f"{name} documents three severity levels"
    for level in op.severities.values():
        assert set(level) <= set(op.defaults), f"{name}: severity keys must be config keys"
    shape = (160, 160)
    img = grey(0.5, shape)
    coverage = {
        level: np.mean([OPS[name].apply(img, draw(name, seed, shape, level))[1].mean() for seed in range(8)])
        for level in ("light", "moderate", "heavy")
    }
    assert coverage["light"] < coverage["moderate"] < coverage["heavy"], f"{name}: {coverage}"
