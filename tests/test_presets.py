"""Presets load, validate, override and plan as documented."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from degrade import Degrader
from degrade.presets import PresetError, builtin_presets, load_preset

SHAPE = (64, 80)


def plans(preset: str, n: int, gray: bool = False) -> list:
    d = Degrader(preset)
    return [d.plan(np.random.default_rng(i), SHAPE, gray) for i in range(n)]


@pytest.mark.parametrize("name", builtin_presets())
def test_builtin_presets_load_and_plan(name: str) -> None:
    preset = load_preset(name)
    assert preset["name"] == name and preset["description"]
    for plan in plans(name, 20):
        json.dumps(plan.to_record())  # plain JSON, replayable


def test_expected_presets_ship() -> None:
    assert {"old-photo", "bopbtl", "unstructured"} <= set(builtin_presets())


def test_bopbtl_matches_the_official_recipe() -> None:
    """Each of the 4 ops fires with p=0.7, in random order; 10% of targets go gray."""
    sampled = plans("bopbtl", 2000)
    fired = Counter(step["label"] for plan in sampled for step in plan.ops)
    for label in ("blur", "noise", "low_resolution", "jpeg"):
        assert abs(fired[label] / 2000 - 0.7) < 0.04, (label, fired[label])
    gray = sum(plan.gray for plan in sampled) / 2000
    assert abs(gray - 0.1) < 0.025
    orders = Counter(tuple(s["label"] for s in plan.ops if s["stage"] == "degrade") for plan in sampled)
    assert len([o for o in orders if len(o) == 4]) == 24  # all permutations of the four ops occur
    for plan in sampled:  # gray targets get a gray input too, as in the official code
        assert [s["op"] for s in plan.ops if s["stage"] == "final"] == (["grayscale"] if plan.gray else [])
    noise = Counter(s["op"] for plan in sampled for s in plan.ops if s["label"] == "noise")
    assert set(noise) == {"gaussian_noise", "speckle_noise", "salt_pepper"}
    blur = [s["params"] for plan in sampled for s in plan.ops if s["op"] == "gaussian_blur"]
    assert {p["kernel"] for p in blur} == {3, 5, 7} and all(1.0 <= p["sigma"] <= 5.0 for p in blur)
    q = [s["params"]["quality"] for plan in sampled for s in plan.ops if s["op"] == "jpeg"]
    assert min(q) >= 40 and max(q) <= 100


@pytest.mark.parametrize("name", ["old-photo", "unstructured"])
def test_when_gray_and_color(name: str) -> None:
    """Sepia tones black-and-white targets and casts tint colour ones, never the reverse."""
    for plan in plans(name, 300):
        ops = {s["op"] for s in plan.ops}
        assert not (plan.gray and "color_cast" in ops)
        assert not (not plan.gray and "sepia" in ops)
    assert all(plan.gray for plan in plans(name, 50, gray=True))


def test_user_file_overrides_a_base(tmp_path: Path) -> None:
    path = tmp_path / "mild.toml"
    path.write_text(
        'base = "bopbtl"\n[stages.degrade.ops.jpeg]\nquality = [90, 95]\np = 1.0\n[target.ops.grayscale]\np = 0\n'
    )
    preset = load_preset(path)
    assert preset["name"] == "bopbtl+mild"
    for plan in (Degrader(preset).plan(np.random.default_rng(i), SHAPE) for i in range(100)):
        jpeg = [s for s in plan.ops if s["op"] == "jpeg"]
        assert len(jpeg) == 1 and 90 <= jpeg[0]["params"]["quality"] <= 95
        assert not plan.gray
    assert preset["stages"]["degrade"]["ops"]["blur"]["config"]["kernel_sizes"] == [3, 5, 7]  # untouched fields kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('base = "old-photo"\ncolour = 1\n', "unknown key 'colour'"),
        ('base = "old-photo"\n[stages.scan.ops.jpeg]\nqualty = [1, 2]\n', "unknown key 'qualty' for op 'jpeg'"),
        ('base = "old-photo"\n[stages.scan]\nshufle = true\n', "unknown key 'shufle'"),
        ('[stages.a.ops.x]\nop = "blurr"\n', "unknown op 'blurr'"),
        ("[stages.a.ops.jpeg]\np = 1.5\n", "p must be a number in [0, 1]"),
        ('[stages.a.ops.jpeg]\nwhen = "sepia"\n', "when must be one of"),
        ("[stages.a.ops.n]\none_of = {}\n", "non-empty table"),
        ("[stages.a.ops.n.one_of.jpeg]\nweight = 0\n", "weight must be a positive number"),
        ('base = "nope"\n', "unknown preset 'nope'"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_presets_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert message in str(info.value)
    assert "bad.toml" in str(info.value) or "nope" in str(info.value)


def test_missing_preset_file() -> None:
    with pytest.raises(PresetError, match="preset file not found"):
        load_preset("no/such/file.toml")
