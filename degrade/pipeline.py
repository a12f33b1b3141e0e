"""Degrader: a preset and a random stream become a plan (ordered ops with params); a plan renders a sample.

Planning draws every random value; rendering is a pure function of (image, plan). The
plan is what the manifest records, so `replay` re-renders any sample bit-exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from degrade.ops import get_op
from degrade.ops.base import to_float, to_uint8
from degrade.presets import load_preset

Step = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What happens to one sample: `target` steps make the clean image, `ops` steps degrade it."""

    target: list[Step]
    ops: list[Step]
    gray: bool

    def to_record(self) -> dict[str, Any]:
        return {"gray": self.gray, "target": self.target, "ops": self.ops}


@dataclass(frozen=True)
class Rendered:
    """One rendered sample: uint8 RGB clean and degraded, uint8 mask (0/255) and label map (H, W)."""

    clean: np.ndarray
    degraded: np.ndarray
    mask: np.ndarray
    labels: np.ndarray


def _equal_channels(img: np.ndarray) -> bool:
    return bool(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]))


def is_gray(img: np.ndarray) -> bool:
    """True when all three channels are equal (a black-and-white photo stored as RGB).

    A sparse grid is checked first: a colour photo almost always fails there, for a fraction of the cost.
    """
    return _equal_channels(img[::16, ::16]) and _equal_channels(img)


def _plan_stage(
    rng: np.random.Generator, stage: Mapping[str, Any], shape: tuple[int, int], gray: bool, name: str
) -> list[Step]:
    """Draw one stage: order, which entries fire, which op of a one_of, and each op's params."""
    labels = list(stage["ops"])
    if stage["shuffle"]:
        labels = [labels[i] for i in rng.permutation(len(labels))]
    steps: list[Step] = []
    for label in labels:
        entry = stage["ops"][label]
        fires = rng.random() < entry["p"]
        if not fires or entry["when"] == ("color" if gray else "gray"):
            continue
        if "one_of" in entry:
            choices = list(entry["one_of"].values())
            weights = np.array([c["weight"] for c in choices], dtype=np.float64)
            chosen = choices[int(rng.choice(len(choices), p=weights / weights.sum()))]
        else:
            chosen = entry
        op = get_op(chosen["op"])
        steps.append({"stage": name, "label": label, "op": op.name, "params": op.sample(rng, shape, chosen["config"])})
    return steps


class Degrader:
    """Turns a preset into plans and renders them.

    >>> d = Degrader("old-photo")
    >>> sample = d(image_uint8, np.random.default_rng(0))
    """

    def __init__(self, preset: str | Path | Mapping[str, Any] = "old-photo") -> None:
        self.preset: Mapping[str, Any] = preset if isinstance(preset, Mapping) else load_preset(preset)

    def plan(self, rng: np.random.Generator, shape: tuple[int, int], gray: bool = False) -> Plan:
        """Draw a plan for an image of `shape` (H, W); `gray` says whether the source is black-and-white."""
        target = _plan_stage(rng, self.preset["target"], shape, gray, "target")
        gray = gray or any(step["op"] == "grayscale" for step in target)
        ops: list[Step] = []
        for name, stage in self.preset["stages"].items():
            ops += _plan_stage(rng, stage, shape, gray, name)
        return Plan(target=target, ops=ops, gray=gray)

    def render(self, image: np.ndarray, plan: Plan) -> Rendered:
        """Apply a plan to a uint8 RGB source image."""
        clean = run_steps(to_float(image), plan.target)[0] if plan.target else image
        clean = to_uint8(clean) if clean.dtype != np.uint8 else clean
        degraded, labels = run_steps(to_float(clean), plan.ops)
        return _finish(clean, degraded, labels)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Rendered:
        """Plan and render one sample from `rng`."""
        return self.render(image, self.plan(rng, image.shape[:2], is_gray(image)))


def run_steps(img: np.ndarray, steps: Iterable[Step]) -> tuple[np.ndarray, np.ndarray]:
    """Apply steps in order to a float image; structured ops paint their label into the label map."""
    labels = np.zeros(img.shape[:2], dtype=np.uint8)
    for step in steps:
        op = get_op(step["op"])
        if op.structured:
            img, changed = op.apply(img, step["params"])
            labels[changed] = op.label
        else:
            img = op.apply(img, step["params"])
    return img, labels


def _finish(clean: np.ndarray, degraded: np.ndarray, labels: np.ndarray) -> Rendered:
    mask = np.where(labels > 0, np.uint8(255), np.uint8(0))
    return Rendered(clean=clean, degraded=to_uint8(degraded), mask=mask, labels=labels)


def replay(record: Mapping[str, Any], image: np.ndarray) -> Rendered:
    """Re-render a sample from its manifest line and its clean image (clean/ID.png), bit-exactly.

    Only the recorded params are used (no random draws), so the result matches the
    files written by `degrade-gen` on the same engine version and library versions.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"replay needs the uint8 RGB clean image, got {image.dtype} {image.shape}")
    size = record.get("size")
    if size is not None and [image.shape[1], image.shape[0]] != list(size):
        raise ValueError(
            f"replay of {record.get('id')}: image is {image.shape[1]}x{image.shape[0]}, record says {size[0]}x{size[1]}"
        )
    degraded, labels = run_steps(to_float(image), record["ops"])
    return _finish(image, degraded, labels)
