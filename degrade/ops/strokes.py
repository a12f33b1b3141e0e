"""Anti-aliased strokes of varying width and opacity, and the paths they follow: scratches, cracks, fibres.

A stroke is a polyline with a width and an opacity per vertex, rasterised as a strip of quads at
`SUPERSAMPLE`x and box-averaged, so each pixel gets the stroke's exact area coverage times its
opacity (sub-pixel widths included). Strokes draw into a strength map that an op then blends
once (`degrade.ops.damage.blend`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

SUPERSAMPLE = 4
"""Strokes are drawn at this many sub-pixels per pixel, then box-averaged: exact area coverage to 1/16."""

LEVEL_STEP = 8
"""Stroke opacity is quantised to multiples of this (out of 255, about 3 %) along a stroke: invisible, and runs
of equal opacity are filled as one polygon, which is what makes drawing cheap."""

Stroke = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(points (N, 2) as (x, y) in pixels, widths (N,) in pixels, opacities (N,) in [0, 1])."""

MAX_CANVAS = 1 << 22
"""Largest supersampled canvas (bytes) `draw_strokes` shares between strokes; bigger groups draw one by one."""


@lru_cache(maxsize=4096)
def unit_steps(n: int) -> np.ndarray:
    """`n` evenly spaced values from 0 to 1 (read-only, cached: strokes ask for the same few lengths over and
    over, and `np.linspace` costs more than the arithmetic it feeds)."""
    t = np.linspace(0.0, 1.0, max(n, 1))
    t.setflags(write=False)
    return t


def smooth_profile(rng: np.random.Generator, n: int, knots: int, lo: float, hi: float) -> np.ndarray:
    """`n` values varying smoothly between `lo` and `hi` along a stroke: random knots joined by a cubic
    (OpenCV's bicubic resize of the knot row; overshoot clipped)."""
    values = rng.uniform(lo, hi, max(2, knots)).astype(np.float32).reshape(1, -1)
    profile = cv2.resize(values, (max(n, 1), 1), interpolation=cv2.INTER_CUBIC)[0]
    return np.clip(profile, min(lo, hi), max(lo, hi), out=profile)


def end_fade(n: int, fraction: float) -> np.ndarray:
    """Opacity envelope along a stroke: 0 at both ends, rising smoothly to 1 over `fraction` of its length."""
    t = unit_steps(n)
    ramp = np.clip(np.minimum(t, 1.0 - t) / max(fraction, 1e-6), 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep


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

    # Segment opacity in steps of LEVEL_STEP/255 (finer than the eye sees on a scratch); each run of equal
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
    t = unit_steps(n)
    direction = (p1 - p0) / max(length, 1e-9)
    side = np.array([-direction[1], direction[0]])
    knots = max(2, int(np.ceil(length / max(wavelength, 1.0))) + 1)
    offsets = np.interp(t, unit_steps(knots), rng.standard_normal(knots)) * wobble
    offsets *= np.sin(np.pi * t) ** 0.5  # pinned at the ends
    return p0 + np.outer(t, p1 - p0) + np.outer(offsets, side)


MIN_WIDTH = 0.3
"""Narrowest drawn width (px): below it a line only gets fainter, which opacity already models."""


def inside_frame(points: np.ndarray, shape: Sequence[int], margin: float) -> slice:
    """The vertex range of a path that lies within the image (plus `margin` px), with one vertex either side."""
    h, w = shape[0], shape[1]
    x, y = points[:, 0], points[:, 1]
    inside = np.flatnonzero((x > -margin) & (x < w + margin) & (y > -margin) & (y < h + margin))
    if len(inside) == 0:
        return slice(0, 0)
    return slice(max(int(inside[0]) - 1, 0), int(inside[-1]) + 2)


def path_pieces(points: np.ndarray, widths: np.ndarray, opacities: np.ndarray) -> list[Stroke]:
    """A stroke cut into consecutive pieces about 256 px long that share their end vertices: drawn
    together they are the same stroke, but on a large scan `draw_strokes` can then rasterise each
    piece in its own box, so a long diagonal stroke never allocates a supersampled canvas the size of
    the picture (16 bytes per pixel)."""
    n = len(points)
    if n < 2:
        return []
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    if x1 - x0 <= 256.0 and y1 - y0 <= 256.0:  # already small (every stroke on a small image): one piece
        return [(points, widths, opacities)]
    lengths = np.hypot(*np.diff(points, axis=0).T)
    per = max(1, int(256.0 / max(float(lengths.mean()), 1e-6)))
    return [
        (points[i : i + per + 1], widths[i : i + per + 1], opacities[i : i + per + 1]) for i in range(0, n - 1, per)
    ]


def draw_paths(strength: np.ndarray, paths: list[Stroke]) -> None:
    """Draw paths (each cut by `path_pieces`) into `strength` in one batch."""
    draw_strokes(strength, [piece for path in paths for piece in path_pieces(*path)])
