"""Resolution loss: downscale, then upscale back to the original size."""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, choice, clip01, uniform

_UP = {"nearest": cv2.INTER_NEAREST_EXACT, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_DOWN = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def _prefilter_sigma(scale: float) -> float:
    """Gaussian std (in source px) that removes what a shrink by `scale` cannot represent.

    Shrinking by s leaves a Nyquist limit of s/2 cycles per source pixel; a Gaussian of
    0.5 * sqrt(1/s^2 - 1) px brings the source's own (~0.5 px) blur up to the new pixel's,
    as a stretched resampling kernel (PIL, the official release) would, at a fraction of the cost.
    """
    return 0.5 * math.sqrt(max(1.0 / (scale * scale) - 1.0, 0.0))


def sample_low_resolution(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    scale_x = uniform(rng, cfg["scale"])
    scale_y = uniform(rng, cfg["scale"]) if cfg["independent_axes"] else scale_x
    return {"scale_x": scale_x, "scale_y": scale_y, "down": choice(rng, cfg["down"]), "up": choice(rng, cfg["up"])}


def apply_low_resolution(img: np.ndarray, params: Params) -> np.ndarray:
    """Lose detail as a small print or a low-resolution scan would: shrink to
    max(1, round(size * scale)) per axis with `down`, then enlarge back with `up`.

    `down`: "area" is OpenCV's pixel-area average; "bilinear"/"bicubic" interpolate after a Gaussian
    anti-alias prefilter (so fine detail averages out instead of aliasing, as with PIL's filters).
    `up` uses OpenCV ("nearest" with PIL's pixel-centre convention; its bicubic has a = -0.75).
    A size that does not change is identity.
    """
    h, w = img.shape[:2]
    size = (max(1, round(w * float(params["scale_x"]))), max(1, round(h * float(params["scale_y"]))))
    if size == (w, h):
        return img.copy()
    down, up = params["down"], params["up"]
    if up not in _UP:
        raise ValueError(f"low_resolution: unknown up filter {up!r} (use nearest, bilinear or bicubic)")
    if down not in _DOWN:
        raise ValueError(f"low_resolution: unknown down filter {down!r} (use area, bilinear or bicubic)")
    if down != "area":  # area averaging is its own anti-alias filter; interpolating ones need a prefilter
        sx, sy = _prefilter_sigma(size[0] / w), _prefilter_sigma(size[1] / h)
        if sx > 0 or sy > 0:
            img = cv2.GaussianBlur(
                img, (0, 0), sigmaX=max(sx, 1e-3), sigmaY=max(sy, 1e-3), borderType=cv2.BORDER_REFLECT_101
            )
    small = cv2.resize(img, size, interpolation=_DOWN[down])
    out = cv2.resize(small, (w, h), interpolation=_UP[up])
    return clip01(out)


OPS = [
    Op(
        "low_resolution",
        sample_low_resolution,
        apply_low_resolution,
        defaults={
            "scale": [0.5, 1.0],
            "independent_axes": True,
            "down": ["area", "bilinear", "bicubic"],
            "up": ["nearest", "bilinear", "bicubic"],
        },
        doc=(
            "Downscale then upscale back; `scale` range per axis, `independent_axes` false uses one scale, "
            "`down` filters to choose from (area, bilinear, bicubic), `up` filters (nearest, bilinear, bicubic)."
        ),
    ),
]
