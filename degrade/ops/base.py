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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Params = dict[str, Any]
Config = Mapping[str, Any]
SampleFn = Callable[[np.random.Generator, tuple[int, int], Config], Params]
ApplyFn = Callable[[np.ndarray, Params], Any]


@dataclass(frozen=True)
class Op:
    """One degradation: its name, its sampler, its renderer and its default config.

    `defaults` lists every config field the op accepts (preset keys are validated
    against it). Structured ops (`label > 0`) return `(image, mask)` from `apply`,
    where mask is a bool (H, W) array of the pixels they changed.
    """

    name: str
    sample: SampleFn
    apply: ApplyFn
    defaults: Mapping[str, Any] = field(default_factory=dict)
    label: int = 0
    doc: str = ""

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
    """Rec. 601 luma (the weights PIL's "L" mode uses), shape (H, W), float32."""
    return img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


LABEL_NAMES: dict[int, str] = {0: "none", 1: "scratch", 2: "hole", 3: "spot", 4: "stain", 5: "crease"}
"""Values of the per-type label map (labels/ID.png); structured ops set `Op.label` to one of these."""
