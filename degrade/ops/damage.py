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

import math
from collections.abc import Sequence

import cv2
import numpy as np

MASK_THRESHOLD = 0.2
"""A pixel is damaged (masked) when the damage covers at least this fraction of it."""

SUPERSAMPLE = 4
"""Strokes are drawn at this many sub-pixels per pixel, then box-averaged: exact area coverage to 1/16."""

LEVEL_STEP = 4
"""Stroke opacity is quantised to multiples of this (out of 255) along a stroke."""


def damage_box(strength: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of the nonzero pixels of `strength`: all that `blend` touches."""
    x, y, w, h = cv2.boundingRect((strength > 0).view(np.uint8))
    return slice(y, y + h), slice(x, x + w)


def blend(img: np.ndarray, strength: np.ndarray, target: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Blend `img` toward `target` by per-pixel `strength`; return `(new image, mask)`.

    `img` is float32 (H, W, 3); `strength` float32 (H, W) in [0, 1]; `target` an RGB colour, a
    float32 (H, W, 3) image, or a float32 image of just the `damage_box` of `strength` (so a caller
    building a per-pixel target need not fill a whole image). The input is never modified. Only
    the damage's box is computed (most damage is local), with OpenCV's fused per-channel arithmetic.
    """
    out = img.copy()
    rows, cols = damage_box(strength)
    if rows.stop > rows.start:
        s = strength[rows, cols].astype(np.float32, copy=False)
        region = np.ascontiguousarray(img[rows, cols])
        tgt = np.asarray(target, dtype=np.float32)
        if tgt.ndim == 1:  # a colour: an OpenCV per-channel scalar, no colour image materialised
            away = cv2.subtract(region, (float(tgt[0]), float(tgt[1]), float(tgt[2]), 0.0))
        else:
            box = tgt if tgt.shape == region.shape else tgt[rows, cols]
            away = cv2.subtract(region, np.ascontiguousarray(box))
        mixed = cv2.subtract(region, cv2.multiply(cv2.merge([s, s, s]), away))  # img - s * (img - target)
        out[rows, cols] = np.clip(mixed, 0.0, 1.0, out=mixed)
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


Stroke = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(points (N, 2) as (x, y) in pixels, widths (N,) in pixels, opacities (N,) in [0, 1])."""

MAX_CANVAS = 1 << 22
"""Largest supersampled canvas (bytes) `draw_strokes` shares between strokes; bigger groups draw one by one."""


def draw_stroke(strength: np.ndarray, points: np.ndarray, widths: np.ndarray, opacities: np.ndarray) -> None:
    """Draw one anti-aliased stroke of varying width and opacity into `strength` (H, W) float32, in place.

    `points` is (N, 2) in pixel coordinates (x, y), pixel centres at integers; `widths` (N,) in
    pixels, sub-pixel widths allowed; `opacities` (N,) in [0, 1]. The stroke is a strip of
    quads between vertex normals, rasterised at `SUPERSAMPLE`x in its bounding box and
    box-averaged, so a pixel's value is the stroke's area coverage times its opacity. A stroke
    thinner than one pixel is drawn one pixel wide at proportionally lower opacity (the same
    area coverage). Where strokes overlap, `strength` keeps the stronger.
    """
    draw_strokes(strength, [(points, widths, opacities)])


def draw_strokes(strength: np.ndarray, strokes: Sequence[Stroke]) -> None:
    """Draw several strokes (as `draw_stroke`) on one supersampled canvas over their joint bounding box.

    One canvas, one box-average and one merge for the group, and the geometry of all strokes computed
    in one vectorised pass: several times cheaper than stroke by stroke for clusters of short strokes.
    Within the group, where two strokes overlap, the later one's opacity wins (sub-pixel by sub-pixel).
    A group spread out over more than twice the area of its strokes' own boxes, or whose canvas would
    exceed `MAX_CANVAS` bytes, is drawn stroke by stroke instead.
    """
    strokes = [s for s in strokes if len(s[0]) >= 2]
    if not strokes:
        return
    pts = np.concatenate([np.asarray(s[0], dtype=np.float64).reshape(-1, 2) for s in strokes])
    w = np.maximum(np.concatenate([np.asarray(s[1], dtype=np.float64).ravel() for s in strokes]), 1e-3)
    opacity = np.concatenate([np.asarray(s[2], dtype=np.float64).ravel() for s in strokes])
    sizes = np.array([len(s[0]) for s in strokes])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    last = first + sizes - 1
    drawn = np.maximum(w, 1.0)
    alpha = np.minimum(opacity * (w / drawn), 1.0)

    h_img, w_img = strength.shape
    pad = float(drawn.max()) / 2 + 2
    (xmin, ymin), (xmax, ymax) = pts.min(axis=0), pts.max(axis=0)
    x0, y0 = max(math.floor(xmin - pad), 0), max(math.floor(ymin - pad), 0)
    x1, y1 = min(math.ceil(xmax + pad) + 1, w_img), min(math.ceil(ymax + pad) + 1, h_img)
    if x1 <= x0 or y1 <= y0:
        return
    ss = SUPERSAMPLE
    if len(strokes) > 1:
        # A shared canvas pays off only when the strokes are close together: when their joint box is much
        # bigger than their own boxes (spread-out strokes), or too big outright, draw them one by one.
        lo = np.minimum.reduceat(pts, first, axis=0)
        hi = np.maximum.reduceat(pts, first, axis=0)
        own = float(np.prod(hi - lo + 2 * pad, axis=1).sum())
        joint = float((x1 - x0) * (y1 - y0))
        if joint > 2.0 * own or joint * ss * ss > MAX_CANVAS:
            for stroke in strokes:
                draw_strokes(strength, [stroke])
            return

    # Vertex normals from central differences (one-sided at each stroke's ends): a gap-free strip of quads.
    tangent = np.empty_like(pts)
    tangent[1:-1] = pts[2:] - pts[:-2]
    tangent[first] = pts[first + 1] - pts[first]
    tangent[last] = pts[last] - pts[last - 1]
    norm = np.hypot(tangent[:, 0], tangent[:, 1])
    norm[norm == 0] = 1.0
    shift = 4  # fractional bits of the sub-pixel coordinates handed to OpenCV
    unit = ss * (1 << shift)
    # OpenCV fills the pixels on a polygon's right and bottom edges too: draw one sub-pixel thinner,
    # half a sub-pixel up and left, so the filled area is centred and exactly `drawn` wide.
    half = (drawn - 1.0 / ss) / 2 * unit / norm
    normal = tangent[:, ::-1] * half[:, None]
    normal[:, 0] *= -1.0
    # Canvas coordinates of the sub-pixel centres: pixel centre (x, y) covers [x - 0.5, x + 0.5].
    local = (pts - [x0 - 0.5, y0 - 0.5]) * unit - (1 << shift)
    left = np.rint(local + normal).astype(np.int32)
    right = np.rint(local - normal).astype(np.int32)

    # Segment opacity in steps of LEVEL_STEP/255 (finer than any visible change); each run of equal
    # segments within a stroke is filled as one polygon: a fraction of the OpenCV calls, the same area.
    levels = np.rint((alpha[:-1] + alpha[1:]) * (127.5 / LEVEL_STEP)).astype(np.int32) * LEVEL_STEP
    levels[last[:-1]] = -1  # the "segment" joining one stroke's end to the next stroke's start
    run_start = np.flatnonzero(np.diff(levels, prepend=-2))
    run_end = np.append(run_start[1:], len(levels))
    canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), dtype=np.uint8)
    for start, end, level in zip(run_start.tolist(), run_end.tolist(), levels[run_start].tolist(), strict=True):
        if level > 0:
            back = right[end : (start - 1 if start else None) : -1]
            cv2.fillPoly(canvas, [np.concatenate([left[start : end + 1], back])], min(level, 255), shift=shift)
    small = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    region = strength[y0:y1, x0:x1]
    np.maximum(region, small.astype(np.float32) * np.float32(1.0 / 255.0), out=region)


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
