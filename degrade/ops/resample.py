"""Resolution loss: downscale, then upscale back to the original size."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from degrade.ops.base import Config, Op, Params, choice, uniform

_UP = {"nearest": cv2.INTER_NEAREST_EXACT, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_PIL_DOWN = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def _pil_resize(img: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize each channel as a 32-bit float PIL image: PIL stretches the filter when shrinking
    (anti-aliasing, as the official release's PIL code does), where cv2 bilinear/bicubic would alias."""
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).resize(size, resample)) for c in range(3)]
    return np.stack(planes, axis=-1)


def sample_low_resolution(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    scale_x = uniform(rng, cfg["scale"])
    scale_y = uniform(rng, cfg["scale"]) if cfg["independent_axes"] else scale_x
    return {"scale_x": scale_x, "scale_y": scale_y, "down": choice(rng, cfg["down"]), "up": choice(rng, cfg["up"])}


def apply_low_resolution(img: np.ndarray, params: Params) -> np.ndarray:
    """Lose detail as a small print or a low-resolution scan would: shrink to
    max(1, round(size * scale)) per axis with `down`, then enlarge back with `up`.

    `down`: "area" is OpenCV's pixel-area average, "bilinear"/"bicubic" are PIL's anti-aliased filters.
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
    if down == "area":
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    elif down in _PIL_DOWN:
        small = _pil_resize(img, size, _PIL_DOWN[down])
    else:
        raise ValueError(f"low_resolution: unknown down filter {down!r} (use area, bilinear or bicubic)")
    out = cv2.resize(small, (w, h), interpolation=_UP[up])
    return np.clip(out, 0.0, 1.0, out=out)


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
