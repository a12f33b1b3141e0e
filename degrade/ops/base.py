"""The op contract: every degradation is a pair *sample parameters -> apply*.

`sample(rng, shape, cfg)` draws every random choice up front and returns plain JSON
values; `apply(img, params)` is then a pure function of the image and those params.
That split is what makes a manifest line replay a sample exactly, lets tests pin an
op with fixed params, and lets benchmark suites be data rather than code.

Images inside the engine are float32 arrays of shape (H, W, 3) with values in [0, 1],
RGB order. `apply` never modifies its input. Ops that need noise draw a `seed` in
`sample` and rebuild their generator from it in `apply`, so one per-sample stream
feeds every op and no two ops ever share a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from scipy.special import ndtri

Params = dict[str, Any]
Config = Mapping[str, Any]
SampleFn = Callable[[np.random.Generator, tuple[int, int], Config], Params]
ApplyFn = Callable[[np.ndarray, Params], Any]


@dataclass(frozen=True)
class Op:
    """One degradation: its name, its sampler, its renderer and its default config.

    `defaults` lists every config field the op accepts (preset keys are validated
    against it). Structured ops (`label > 0`) return `(image, mask)` from `apply`,
    where mask is a bool (H, W) array of the pixels they damaged (see `degrade.ops.damage`).
    """

    name: str
    sample: SampleFn
    apply: ApplyFn
    defaults: Mapping[str, Any] = field(default_factory=dict)
    label: int = 0
    doc: str = ""
    severities: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Config overrides for the severity levels "light", "moderate" and "heavy" (catalogue, benchmark tracks)."""

    @property
    def structured(self) -> bool:
        return self.label > 0


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    """A float drawn uniformly from `[lo, hi]` (a one-element list or equal bounds is a constant)."""
    lo, hi = (bounds[0], bounds[-1])
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def randint(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    """An int drawn uniformly from the inclusive range `[lo, hi]`."""
    return int(rng.integers(int(bounds[0]), int(bounds[-1]) + 1))


def choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    """One element of `options`, as a plain Python value."""
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


def new_seed(rng: np.random.Generator) -> int:
    """A fresh 63-bit seed for an op's own noise, drawn from the sample's stream."""
    return int(rng.integers(0, 2**63 - 1))


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (the weights PIL's "L" mode uses), shape (H, W), float32 (OpenCV: one SIMD pass)."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def clip01(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place and return `img` (a fresh float32 array the caller owns)."""
    return np.clip(img, 0.0, 1.0, out=img)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return img.astype(np.float32) * np.float32(1.0 / 255.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] -> uint8, rounded to nearest and saturated (OpenCV: one fused pass)."""
    flat = np.ascontiguousarray(img, dtype=np.float32).reshape(img.shape[0], -1)  # one channel: all values alike
    _, positive = cv2.threshold(flat, 0.0, 0.0, cv2.THRESH_TOZERO)  # negatives -> 0; the abs below is then a no-op
    return cv2.convertScaleAbs(positive, alpha=255.0).reshape(img.shape)


LABEL_NAMES: dict[int, str] = {0: "none", 1: "scratch", 2: "hole", 3: "spot", 4: "stain", 5: "crease"}
"""Values of the per-type label map (labels/ID.png); structured ops set `Op.label` to one of these."""


@lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    """65,536 equiprobable standard-normal quantiles, rescaled to unit variance."""
    table = ndtri((np.arange(65536, dtype=np.float64) + 0.5) / 65536.0)
    return (table / table.std()).astype(np.float32)


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 noise, about 5x faster than `rng.standard_normal` for image-sized draws.

    Each value is a 16-bit uniform integer mapped through a quantile table: a normal
    quantised to 65,536 levels with tails cut at 4.2 sigma, which no image noise can tell apart
    from the real thing, at a fraction of the cost (noise generation dominates noisy ops).
    `scale` multiplies the table, not the draw, which saves a pass over the image.
    """
    table = _normal_table() if scale == 1.0 else _normal_table() * np.float32(scale)
    count = math.prod(shape)
    # Raw 64-bit draws split into four 16-bit indices: the cheapest uniform bits the generator offers.
    indices = rng.bit_generator.random_raw((count + 3) // 4).view("<u2")[:count]
    return np.take(table, indices).reshape(shape)  # np.take: a faster gather than fancy indexing
