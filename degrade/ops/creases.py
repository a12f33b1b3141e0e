"""Folds and crazing: a fold line with its cracked ridge and shading, networks of fine emulsion cracks.

Geometry is in pixels at a 512 px short side and scales with the image (`scale = min(H, W) / 512`),
as in `degrade.ops.scratches`; params record lengths in pixels of the image they were sampled for.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import Delaunay

from degrade.ops.base import Config, Op, Params, choice, new_seed, randint, uniform
from degrade.ops.damage import MASK_THRESHOLD, blend, damage_box, image_scale, palette_image, smooth_noise
from degrade.ops.scratches import damage_colour
from degrade.ops.strokes import MIN_WIDTH, draw_paths, inside_frame, smooth_profile, wavy_path

# --- fold -------------------------------------------------------------------------------

_FOLD_POSITIONS = (0.5, 0.5, 0.25, 0.75, 1 / 3, 2 / 3)
"""Where prints get folded, as a fraction across the picture: halves most often, then quarters and thirds."""


def _sample_one_fold(rng: np.random.Generator, shape: tuple[int, int], cfg: Config, vertical: bool) -> Params:
    h, w = shape
    scale = image_scale(shape)
    if rng.random() < float(cfg["axis_probability"]):  # folded in halves, quarters or thirds
        angle = (90.0 if vertical else 0.0) + rng.normal(0.0, 2.5)
        across = (choice(rng, _FOLD_POSITIONS) + rng.normal(0.0, 0.03)) * (w if vertical else h)
        x, y = (across, h / 2) if vertical else (w / 2, across)
    else:  # a bent corner or a careless diagonal fold
        angle = rng.uniform(0.0, 180.0)
        x, y = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    return {
        "x": round(float(x), 2),
        "y": round(float(y), 2),
        "angle": round(float(angle), 3),
        "bow": round(rng.normal(0.0, 0.02) * max(h, w), 2),
        "crack_width": round(uniform(rng, cfg["crack_width"]) * scale, 3),
        "crack_opacity": round(uniform(rng, cfg["crack_opacity"]), 3),
        "cracked": round(uniform(rng, cfg["cracked"]), 3),
        "flakes": round(uniform(rng, cfg["flakes"]), 3),
        "ridge": round(uniform(rng, cfg["ridge"]), 3),
        "shade": round(min(uniform(rng, cfg["shade"]), 0.9 * MASK_THRESHOLD), 3),
        "falloff": round(uniform(rng, cfg["falloff"]) * scale, 2),
        "lit_side": choice(rng, [-1, 1]),
    }


def sample_fold(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    first_vertical = bool(rng.random() < 0.5)
    count = randint(rng, cfg["count"])
    return {  # a second fold crosses the first (folded in quarters), a third parallels one of them
        "folds": [_sample_one_fold(rng, shape, cfg, first_vertical ^ (i % 2 == 1)) for i in range(count)],
        "colour": damage_colour(rng, True),
        "seed": new_seed(rng),
    }


def _fold_line(rng: np.random.Generator, params: Params, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The fold's ridge as a polyline across the whole picture (gently bowed by `bow` px and
    wobbling by about a pixel at 512), and its unit direction (x, y)."""
    h, w = shape
    scale = image_scale(shape)
    a = math.radians(float(params["angle"]))
    direction = np.array([math.cos(a), math.sin(a)])
    normal = np.array([-direction[1], direction[0]])
    centre = np.array([float(params["x"]), float(params["y"])])
    half = math.hypot(h, w) / 2 + abs(centre - [w / 2, h / 2]).sum()  # reaches past every corner
    step = max(1.5, 3.0 * scale)
    points = wavy_path(rng, centre - direction * half, centre + direction * half, step, 1.0 * scale, 80.0 * scale)
    t = np.linspace(-1.0, 1.0, len(points))[:, None]
    points += normal * float(params["bow"]) * (1.0 - t * t)
    return points, direction


def _band(points: np.ndarray, reach: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns of the image within `reach` px of the visible part of a polyline."""
    h, w = shape
    visible = points[inside_frame(points, shape, 0.0)]
    if len(visible) == 0:
        return slice(0, 0), slice(0, 0)
    (x0, y0), (x1, y1) = visible.min(axis=0) - reach, visible.max(axis=0) + reach
    return slice(max(int(y0), 0), min(int(y1) + 2, h)), slice(max(int(x0), 0), min(int(x1) + 2, w))


def _signed_distance(points: np.ndarray, direction: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Signed distance (px, float32, shape (len(ys), len(xs))) of the grid points `xs` x `ys` from a
    nearly straight polyline along `direction`: the offset across the line minus the polyline's own
    offset at that position along it."""
    normal = np.array([-direction[1], direction[0]])
    origin = points[0]
    along = (points - origin) @ direction
    offset = (points - origin) @ normal
    dx, dy = xs[None, :] - origin[0], ys[:, None] - origin[1]
    u = dx * direction[0] + dy * direction[1]
    v = dx * normal[0] + dy * normal[1]
    return (v - np.interp(u, along, offset)).astype(np.float32)


_COARSE = 8
"""Fold fields vary smoothly (a distance from a nearly straight line, a slow modulation): they are
evaluated every `_COARSE` px and upsampled bilinearly, which is exact for a straight line."""


def _fold_fields(
    rng: np.random.Generator, points: np.ndarray, direction: np.ndarray, rows: slice, cols: slice, cell: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance from the fold (px) and a smooth unit-variance field with features about `cell`
    px wide, both float32 over the pixels `rows` x `cols`."""
    g, h, w = _COARSE, rows.stop - rows.start, cols.stop - cols.start
    ny, nx = -(-h // g) + 2, -(-w // g) + 2
    # Coarse sample k sits at (k - 0.5) * g - 0.5 px, so that resizing by exactly g, then dropping the
    # first g pixels, puts every pixel back where it belongs (resize maps pixel centres linearly).
    ys = rows.start + (np.arange(ny) - 0.5) * g - 0.5
    xs = cols.start + (np.arange(nx) - 0.5) * g - 0.5
    coarse = cv2.merge([_signed_distance(points, direction, xs, ys), smooth_noise(rng, (ny, nx), cell / g)])
    fine = cv2.resize(coarse, (nx * g, ny * g), interpolation=cv2.INTER_LINEAR)[g : g + h, g : g + w]
    return fine[..., 0], fine[..., 1]


def _fold_crack(
    rng: np.random.Generator, params: Params, points: np.ndarray, strength: np.ndarray, scale: float
) -> None:
    """Draw the cracked emulsion along the ridge into `strength`: an irregular, jagged line, intact over
    all but about `cracked` of its length, with `flakes` chips per 100 px (at 512), where a little more
    emulsion broke away beside the crack (the line widens by 1.5-4 px at 512 over a step or two)."""
    keep = inside_frame(points, strength.shape, 3.0)
    points = points[keep]
    n = len(points)
    if n < 2:
        return
    tangent = np.gradient(points, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / np.linalg.norm(tangent, axis=1, keepdims=True)
    knots = max(4, n // 3)
    widths = float(params["crack_width"]) * smooth_profile(rng, n, knots, 0.25, 1.0)
    present = smooth_profile(rng, n, max(4, n // 10), 0.0, 1.0) - (1.0 - float(params["cracked"]))
    opacity = float(params["crack_opacity"])
    opacities = opacity * np.clip(present / 0.08, 0.0, 1.0) * smooth_profile(rng, n, knots, 0.6, 1.0)
    step = float(np.linalg.norm(points[1] - points[0]))
    chips = rng.integers(0, n, int(rng.poisson(float(params["flakes"]) * n * step / (100.0 * scale))))
    widths[chips] += rng.uniform(1.5, 4.0, len(chips)) * scale
    opacities[chips] = np.maximum(opacities[chips], opacity * rng.uniform(0.6, 1.0, len(chips)))
    jagged = points + normal * rng.normal(0.0, 0.35 * scale, (n, 1))
    draw_paths(strength, [(jagged, np.maximum(widths, MIN_WIDTH), opacities)])


def apply_fold(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Folds across the print, each a ridge through (`x`, `y`) at `angle` degrees, bowed by `bow` px.

    Along the ridge the emulsion cracked: a bright (`colour`) jagged line `crack_width` px wide at
    most and `crack_opacity` opaque, present over about `cracked` of the length, with `flakes` chips
    per 100 px (at 512). Across it, the bent paper catches the light on one side (`lit_side` of the
    line, +1 or -1) and is shadowed on the other: strength `ridge` right at the crest (within about
    a pixel at 512, so the crest is masked), and a gentle `shade` (kept below the mask threshold)
    decaying over `falloff` px, toward a lightened copy of the image on the lit side and a darkened
    one on the other. Where folds cross, the stronger shading wins. Shading is computed only within
    4 falloffs of the line (beyond, it moves a pixel by less than 1/255).
    """
    h, w = img.shape[:2]
    scale = image_scale((h, w))
    rng = np.random.default_rng(int(params["seed"]))
    crest = max(0.8 * scale, 0.6)
    shading = np.zeros((h, w), dtype=np.float32)
    lit = np.zeros((h, w), dtype=bool)
    crack = np.zeros((h, w), dtype=np.float32)
    for fold in params["folds"]:
        points, direction = _fold_line(rng, fold, (h, w))
        falloff = float(fold["falloff"])
        rows, cols = _band(points, 4.0 * falloff + 3.0 * crest, (h, w))
        dist, uneven = _fold_fields(rng, points, direction, rows, cols, 120.0 * scale)
        strength = np.maximum(
            float(fold["shade"]) * np.exp(-np.abs(dist) / falloff),
            float(fold["ridge"]) * np.exp(-((dist / crest) ** 2)),
        )
        strength *= np.clip(0.8 + 0.25 * uneven, 0.3, 1.0)  # the fold was pressed harder in places
        stronger = strength > shading[rows, cols]
        shading[rows, cols][stronger] = strength[stronger]
        lit[rows, cols][stronger] = (dist * float(fold["lit_side"]) > 0)[stronger]
        _fold_crack(rng, fold, points, crack, scale)
    # Target: 0.15 img (shadowed side), 0.15 img + 0.85 (lit side) or the crack's colour, for the damage's
    # bounding box only (all that blend reads).
    strength = np.maximum(crack, shading)
    rows, cols = damage_box(strength)
    side = lit[rows, cols].view(np.uint8)
    cracked = crack[rows, cols] > shading[rows, cols]
    side[cracked] = 2
    target = palette_image(side, [[0.0] * 3, [0.85] * 3, [0.0] * 3])
    target = cv2.scaleAdd(np.ascontiguousarray(img[rows, cols]), 0.15, target)  # 0.15 img + (0 or 0.85)
    target[cracked] = params["colour"]
    return blend(img, strength, target)


# --- crazing ----------------------------------------------------------------------------


def sample_crazing(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    h, w = shape
    scale = image_scale(shape)
    whole = bool(rng.random() < float(cfg["whole_probability"]))
    bright = bool(rng.random() < float(cfg["bright_probability"]))
    return {
        "whole": whole,
        "x": round(rng.uniform(0, w), 2),
        "y": round(rng.uniform(0, h), 2),
        "radius": round(uniform(rng, cfg["radius"]) * min(h, w), 2),
        "cell": round(max(uniform(rng, cfg["cell"]) * scale, 4.0), 2),
        "width": round(max(uniform(rng, cfg["width"]) * scale, MIN_WIDTH), 3),
        "opacity": round(uniform(rng, cfg["opacity"]), 3),
        "broken": round(uniform(rng, cfg["broken"]), 3),
        "bright": bright,
        "colour": damage_colour(rng, bright),
        "seed": new_seed(rng),
    }


def _voronoi_edges(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both ends, (E, 2) each, of every finite Voronoi edge of `points` (N, 2): the circumcentres of
    each pair of adjacent Delaunay triangles (twice as fast as `scipy.spatial.Voronoi` and its ridges)."""
    tri = Delaunay(points)
    a = points[tri.simplices[:, 0]]
    b, c = points[tri.simplices[:, 1]] - a, points[tri.simplices[:, 2]] - a
    b2, c2 = (b * b).sum(axis=1), (c * c).sum(axis=1)
    den = 2.0 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    centres = a + np.stack([c[:, 1] * b2 - b[:, 1] * c2, b[:, 0] * c2 - c[:, 0] * b2], axis=1) / den[:, None]
    own = np.repeat(np.arange(len(centres)), 3)
    other = tri.neighbors.ravel()
    shared = other > own  # each inner edge once; -1 (no neighbour) drops the hull's open edges
    return centres[own[shared]], centres[other[shared]]


def _crooked(rng: np.random.Generator, starts: np.ndarray, ends: np.ndarray, pieces: int, bend: float) -> np.ndarray:
    """Segments (E * pieces, 2, 2): each edge split into `pieces`, its inner joints pushed sideways by
    up to `bend` times the edge's length, so cell walls are slightly crooked rather than ruled."""
    t = np.linspace(0.0, 1.0, pieces + 1)[None, :, None]
    along = (ends - starts)[:, None, :]
    across = np.stack([-along[..., 1], along[..., 0]], axis=-1)
    push = rng.uniform(-bend, bend, (len(starts), pieces + 1, 1))
    push[:, [0, -1]] = 0.0
    joints = starts[:, None, :] + t * along + push * across
    return np.stack([joints[:, :-1], joints[:, 1:]], axis=2).reshape(-1, 2, 2)


def _density(rng: np.random.Generator, params: Params, points: np.ndarray) -> np.ndarray:
    """How strongly each point (N, 2) is crazed, in [0, 1]: inside a patch of radius `radius` px whose
    edge wanders with direction (random low harmonics) and fades over its outer third, or over the
    whole print at a density that varies smoothly (random plane waves about the print's size)."""
    offset = points - [float(params["x"]), float(params["y"])]
    radius = float(params["radius"])
    if params["whole"]:
        k = rng.normal(0.0, 1.0, (3, 2)) * (2.0 * np.pi / (3.0 * radius))
        waves = np.cos(offset @ k.T + rng.uniform(0.0, 2.0 * np.pi, 3)).sum(axis=1)
        return np.clip(0.75 + 0.2 * waves, 0.0, 1.0)
    angle = np.arctan2(offset[:, 1], offset[:, 0])[:, None]
    harmonics = np.arange(1, 5)
    wander = (rng.normal(0.0, 0.15, 4) / harmonics * np.cos(harmonics * angle + rng.uniform(0, 2 * np.pi, 4))).sum(1)
    r = np.hypot(offset[:, 0], offset[:, 1]) / (radius * (1.0 + wander))
    return np.clip((1.0 - r) / 0.35, 0.0, 1.0)


def apply_crazing(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Craquelure: a network of fine cracks in the emulsion along the walls of polygonal cells about
    `cell` px across (the Voronoi cells of a jittered grid of points, walls slightly crooked), over a
    soft-edged patch (`x`, `y`, `radius` px) or the whole print (`whole`). Each wall has its own
    strength (up to `opacity`), `broken` of them are missing, and each of its six pieces varies in
    strength (55-100%) or is missing (one in eight);
    lines are `width` px (thinner ones fainter: area coverage), anti-aliased; `colour` is grime
    (dark) or bare paper (bright). Cost grows with the number of cells, not of pixels."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    cell, reach = float(params["cell"]), 1.05 * float(params["radius"])
    x, y = float(params["x"]), float(params["y"])
    x0, x1 = (0, w) if params["whole"] else (max(int(x - reach), 0), min(int(x + reach) + 1, w))
    y0, y1 = (0, h) if params["whole"] else (max(int(y - reach), 0), min(int(y + reach) + 1, h))
    strength = np.zeros((h, w), dtype=np.float32)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return blend(img, strength, params["colour"])
    gy, gx = np.mgrid[y0 - cell : y1 + 2 * cell : cell, x0 - cell : x1 + 2 * cell : cell]
    seeds = np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.uniform(-0.5, 0.5, (gx.size, 2)) * cell
    starts, ends = _voronoi_edges(seeds)
    wall = rng.uniform(0.5, 1.0, len(starts)) * (rng.random(len(starts)) >= float(params["broken"]))
    wall *= _density(rng, params, (starts + ends) / 2)
    pieces = 6
    segments = _crooked(rng, starts, ends, pieces, 0.07)
    width = float(params["width"])
    piece = rng.uniform(0.55, 1.0, len(segments)) * (rng.random(len(segments)) >= 0.125)
    level = np.repeat(wall, pieces) * piece
    level *= float(params["opacity"]) * min(width, 1.0)
    grey = np.minimum(np.round(level * 16.0) * 16.0, 255.0)  # sixteen grey levels: one polylines call each
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    fixed = np.round((segments - [x0, y0]) * 16.0).astype(np.int32)  # 4 fractional bits
    for value in np.unique(grey[grey > 0]):
        cv2.polylines(canvas, fixed[grey == value], False, int(value), max(1, round(width)), cv2.LINE_AA, 4)
    strength[y0:y1, x0:x1] = canvas * np.float32(1.0 / 255.0)
    return blend(img, strength, params["colour"])


OPS: list[Op] = [
    Op(
        "fold",
        sample_fold,
        apply_fold,
        defaults={
            "count": [1, 1],
            "axis_probability": 0.8,
            "crack_width": [0.8, 2.5],
            "crack_opacity": [0.6, 1.0],
            "cracked": [0.3, 0.8],
            "flakes": [0.5, 3.0],
            "ridge": [0.25, 0.5],
            "shade": [0.06, 0.16],
            "falloff": [4.0, 30.0],
        },
        label=5,
        doc=(
            "Fold lines with a bright cracked ridge and light/dark shading either side; `count` folds per print "
            "(a second crosses the first), `axis_probability` of a "
            "fold along the picture's axes (halves, quarters, thirds) rather than at any angle, `crack_width` max "
            "px at 512, `crack_opacity`, `cracked` share of the ridge's length, `flakes` chips per 100 px at 512, "
            "`ridge` strength of the crest's highlight/shadow, `shade` peak strength of the shading (below the "
            "mask threshold), `falloff` px at 512 over which it decays."
        ),
        severities={
            "light": {"crack_width": [0.5, 1.2], "cracked": [0.1, 0.4], "flakes": [0.0, 1.0], "ridge": [0.2, 0.35]},
            "moderate": {},
            "heavy": {
                "count": [1, 2],
                "crack_width": [2.0, 4.5],
                "cracked": [0.7, 1.0],
                "flakes": [3.0, 8.0],
                "ridge": [0.4, 0.7],
            },
        },
    ),
    Op(
        "crazing",
        sample_crazing,
        apply_crazing,
        defaults={
            "whole_probability": 0.25,
            "radius": [0.2, 0.5],
            "cell": [10.0, 60.0],
            "width": [0.7, 1.4],
            "opacity": [0.4, 0.9],
            "broken": [0.1, 0.5],
            "bright_probability": 0.5,
        },
        label=5,
        doc=(
            "Craquelure: a network of fine emulsion cracks around polygonal cells; `whole_probability` of covering "
            "the whole print (else a soft patch of `radius` x short side), `cell` size px at 512, `width` line px at "
            "512, `opacity` max, `broken` share of missing cell borders, `bright_probability` of white lines."
        ),
        severities={
            "light": {"whole_probability": 0.0, "radius": [0.15, 0.3], "opacity": [0.3, 0.6]},
            "moderate": {},
            "heavy": {"whole_probability": 0.6, "radius": [0.4, 0.7], "opacity": [0.6, 1.0], "broken": [0.0, 0.3]},
        },
    ),
]
