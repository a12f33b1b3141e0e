"""Shared machinery of the structured (masked) damage ops: one blend rule, one mask rule, strokes, noise fields.

Every structured op renders a *strength* map `s` in [0, 1] (how much of each pixel the damage
covers) and a damage colour `target` (a colour, or a per-pixel image such as a darkened copy),
then blends `out = img + s * (target - img)`. The mask is `s >= MASK_THRESHOLD`, the same rule
for every op, so:

- outside the mask a pixel moves less than `MASK_THRESHOLD` of the way to the damage colour
  (at most 0.2 * |target - img|: the faint anti-aliased rim of a stroke, the soft edge of a stain);
- inside the mask it moves at least that far.

The mask is a property of the damage, not of the picture: a white scratch over a white sky is
still masked, which is what a detector must learn (and what the paper's texture masks do).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MASK_THRESHOLD = 0.2
"""A pixel is damaged (masked) when the damage covers at least this fraction of it."""

SUPERSAMPLE = 4
"""Strokes are drawn at this many sub-pixels per pixel, then box-averaged: exact area coverage to 1/16."""


def blend(img: np.ndarray, strength: np.ndarray, target: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Blend `img` toward `target` by per-pixel `strength`; return `(new image, mask)`.

    `img` is float32 (H, W, 3); `strength` float32 (H, W) in [0, 1]; `target` an RGB colour
    or a float32 (H, W, 3) image. The input is never modified. Only the bounding box of the
    damage is computed (most damage is local), with OpenCV's fused per-channel arithmetic.
    """
    out = img.copy()
    x, y, w, h = cv2.boundingRect((strength > 0).view(np.uint8))
    if w and h:
        s = strength[y : y + h, x : x + w].astype(np.float32, copy=False)
        region = np.ascontiguousarray(img[y : y + h, x : x + w])
        tgt = np.asarray(target, dtype=np.float32)
        if tgt.ndim == 1:  # a colour: an OpenCV per-channel scalar, no colour image materialised
            away = cv2.subtract(region, (float(tgt[0]), float(tgt[1]), float(tgt[2]), 0.0))
        else:
            away = cv2.subtract(region, np.ascontiguousarray(tgt[y : y + h, x : x + w]))
        mixed = cv2.subtract(region, cv2.multiply(cv2.merge([s, s, s]), away))  # img - s * (img - target)
        out[y : y + h, x : x + w] = np.clip(mixed, 0.0, 1.0, out=mixed)
    return out, strength >= MASK_THRESHOLD


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """A smooth random field of shape (H, W), zero mean and unit variance, with features about `cell` pixels wide.

    Gaussian noise on a coarse grid, enlarged with bicubic interpolation: cheap at any size.
    """
    h, w = shape
    gh, gw = max(2, int(np.ceil(h / cell)) + 3), max(2, int(np.ceil(w / cell)) + 3)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(cell), int(cell)  # skip the border rows, where bicubic extrapolation is biased
    field = field[oy : oy + h, ox : ox + w]
    std = float(field.std())
    return (field - float(field.mean())) / (std if std > 0 else 1.0)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 4) -> np.ndarray:
    """Sum of `smooth_noise` octaves (each half the size and half the weight): ragged, natural edges."""
    total = np.zeros(shape, dtype=np.float32)
    weight, size = 1.0, cell
    for _ in range(octaves):
        if size < 1.0:
            break
        total += weight * smooth_noise(rng, shape, size)
        weight, size = weight * 0.5, size * 0.5
    std = float(total.std())
    return total / (std if std > 0 else 1.0)


def smooth_profile(rng: np.random.Generator, n: int, knots: int, lo: float, hi: float) -> np.ndarray:
    """`n` values varying smoothly between `lo` and `hi` along a stroke (random knots, cubic-smoothed)."""
    knots = max(2, knots)
    values = rng.uniform(lo, hi, knots)
    xs = np.linspace(0.0, 1.0, knots)
    t = np.linspace(0.0, 1.0, max(n, 1))
    profile = np.interp(t, xs, values)
    if n > 4:
        k = max(1, n // (2 * knots)) | 1
        profile = cv2.GaussianBlur(
            profile.reshape(1, -1).astype(np.float64), (k, 1), 0, borderType=cv2.BORDER_REPLICATE
        )[0]
    return np.clip(profile, min(lo, hi), max(lo, hi)).astype(np.float32)


def end_fade(n: int, fraction: float) -> np.ndarray:
    """Opacity envelope along a stroke: 0 at both ends, rising smoothly to 1 over `fraction` of its length."""
    t = np.linspace(0.0, 1.0, max(n, 1))
    ramp = np.clip(np.minimum(t, 1.0 - t) / max(fraction, 1e-6), 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep


def draw_stroke(
    strength: np.ndarray, points: np.ndarray, widths: np.ndarray, opacities: np.ndarray, *, combine: str = "max"
) -> None:
    """Draw one anti-aliased stroke of varying width and opacity into `strength` (H, W) float32, in place.

    `points` is (N, 2) in pixel coordinates (x, y), pixel centres at integers; `widths` (N,) in
    pixels, sub-pixel widths allowed; `opacities` (N,) in [0, 1]. The stroke is a strip of
    quads between vertex normals, rasterised at `SUPERSAMPLE`x in its bounding box and
    box-averaged, so a pixel's value is the stroke's area coverage times its opacity. A stroke
    thinner than one pixel is drawn one pixel wide at proportionally lower opacity (the same
    area coverage). `combine` is "max" (overlaps keep the stronger stroke) or "add" (saturating).
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return
    w = np.maximum(np.asarray(widths, dtype=np.float64), 1e-3)
    drawn = np.maximum(w, 1.0)
    alpha = np.clip(np.asarray(opacities, dtype=np.float64) * w / drawn, 0.0, 1.0)

    h_img, w_img = strength.shape
    pad = float(drawn.max()) / 2 + 2
    x0 = max(int(np.floor(pts[:, 0].min() - pad)), 0)
    y0 = max(int(np.floor(pts[:, 1].min() - pad)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + pad)) + 1, w_img)
    y1 = min(int(np.ceil(pts[:, 1].max() + pad)) + 1, h_img)
    if x1 <= x0 or y1 <= y0:
        return

    # Vertex normals from central differences give a gap-free strip of quads.
    tangent = np.gradient(pts, axis=0)
    norm = np.linalg.norm(tangent, axis=1, keepdims=True)
    tangent = tangent / np.where(norm > 0, norm, 1.0)
    ss = SUPERSAMPLE
    # OpenCV fills the pixels on a polygon's right and bottom edges too: draw one sub-pixel thinner,
    # half a sub-pixel up and left, so the filled area is centred and exactly `drawn` wide.
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * ((drawn - 1.0 / ss) / 2)[:, None]
    # Sub-pixel coordinates: pixel centre (x, y) covers [x - 0.5, x + 0.5]; 4 fractional bits for OpenCV.
    shift = 4
    local = (pts - [x0 - 0.5, y0 - 0.5]) * ss - 1.0  # canvas coordinates of the sub-pixel centres
    left = np.round((local + normal * ss) * (1 << shift)).astype(np.int32)
    right = np.round((local - normal * ss) * (1 << shift)).astype(np.int32)
    canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), dtype=np.uint8)
    levels = np.round((alpha[:-1] + alpha[1:]) * 127.5).astype(np.int32)
    quads = np.stack([left[:-1], left[1:], right[1:], right[:-1]], axis=1)
    for quad, level in zip(quads, levels.tolist(), strict=True):
        if level:
            cv2.fillPoly(canvas, [quad], level, lineType=cv2.LINE_8, shift=shift)
    small = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    region = strength[y0:y1, x0:x1]
    if combine == "add":
        np.minimum(region + small, 1.0, out=region)
    else:
        np.maximum(region, small, out=region)


def wavy_path(
    rng: np.random.Generator,
    start: Sequence[float],
    end: Sequence[float],
    step: float,
    wobble: float,
    wavelength: float,
) -> np.ndarray:
    """Points from `start` to `end` about `step` px apart, displaced sideways by a smooth random
    wobble of amplitude `wobble` px and typical wavelength `wavelength` px (zero at the ends)."""
    p0, p1 = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    length = float(np.linalg.norm(p1 - p0))
    n = max(2, int(np.ceil(length / max(step, 0.25))) + 1)
    t = np.linspace(0.0, 1.0, n)
    direction = (p1 - p0) / max(length, 1e-9)
    side = np.array([-direction[1], direction[0]])
    knots = max(2, int(np.ceil(length / max(wavelength, 1.0))) + 1)
    offsets = np.interp(t, np.linspace(0, 1, knots), rng.standard_normal(knots)) * wobble
    offsets *= np.sin(np.pi * t) ** 0.5  # pinned at the ends
    return p0 + np.outer(t, p1 - p0) + np.outer(offsets, side)
