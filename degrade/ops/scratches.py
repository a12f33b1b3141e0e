"""Scratches and cracks in the emulsion: long film scratches, short scuffs, branching hairline cracks.

Each op draws thin strokes with `damage.draw_strokes` (through `draw_paths`, which keeps the
rasterised boxes small on large scans) into one strength map per polarity and blends
once toward a per-pixel target: *bright* where the emulsion is scraped or cracked down to the paper
(the common case on prints), *dark* where dirt fills the groove or a scratched negative printed dark.
Lengths and widths are in pixels at a 512 px short side and scale with the image
(`scale = min(H, W) / 512`); drawn widths never go below 0.3 px (thinner lines are fainter, not
thinner, once anti-aliased). Counts are per image. Params record lengths and widths in pixels of the
image they were sampled for.
"""

from __future__ import annotations

import math

import numpy as np

from degrade.ops.base import Config, Op, Params, choice, new_seed, randint, uniform
from degrade.ops.damage import MASK_THRESHOLD, blend_polarities, image_scale
from degrade.ops.strokes import (
    MIN_WIDTH,
    Stroke,
    draw_paths,
    end_fade,
    inside_frame,
    smooth_profile,
    unit_steps,
    wavy_path,
)


def damage_colour(rng: np.random.Generator, bright: bool) -> list[float]:
    """An RGB damage colour: bright = bare print paper (0.86-1, slightly warm), dark = grime (0.04-0.25, brownish)."""
    if bright:
        level = rng.uniform(0.86, 1.0)
        rgb = level * np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.88, 0.98)])
    else:
        level = rng.uniform(0.04, 0.25)
        rgb = level * np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 0.95)])
    return [round(float(v), 4) for v in rgb]


def fade(n: int, head: float, tail: float) -> np.ndarray:
    """Opacity envelope (n,) that rises smoothly from 0 over the first `head` of a stroke and falls
    back to 0 over the last `tail` (fractions of its length, each in [0, 0.5]; 0 = no fade at that
    end): `end_fade` with its own length at each end, e.g. a stroke that starts abruptly and tails off."""
    eps = 1e-6
    knots = [0.0, max(head, eps), 1.0 - max(tail, eps), 1.0]
    ramp = np.interp(unit_steps(n), knots, [0.0 if head > 0 else 1.0, 1.0, 1.0, 0.0 if tail > 0 else 1.0])
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep


def breaks(rng: np.random.Generator, n: int, count: int, half_length: tuple[float, float]) -> np.ndarray:
    """Opacity envelope (n,) with `count` gaps: zero over a random half length (in vertices), ramping back."""
    envelope = np.ones(n, dtype=np.float32)
    index = np.arange(n, dtype=np.float32)
    for _ in range(count):
        centre = rng.uniform(0.05, 0.95) * (n - 1)
        half = rng.uniform(*half_length)
        envelope *= np.clip((np.abs(index - centre) - half) / max(0.5 * half, 1.0), 0.0, 1.0)
    return envelope


def _polarity_maps(shape: tuple[int, int], paths: dict[bool, list[Stroke]]) -> tuple[np.ndarray, np.ndarray]:
    """Strength maps of the bright and the dark paths, each drawn in one batch."""
    maps = []
    for bright in (True, False):
        strength = np.zeros(shape, dtype=np.float32)
        draw_paths(strength, paths[bright])
        maps.append(strength)
    return maps[0], maps[1]


def _round(value: float) -> float:
    return round(float(value), 3)


# --- film scratches ---------------------------------------------------------------------


def sample_film_scratches(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    h, w = shape
    scale = image_scale(shape)
    max_angle = float(cfg["max_angle"])
    scratches = []
    for _ in range(randint(rng, cfg["count"])):
        if rng.random() < float(cfg["full_length_probability"]):
            y0, y1, ends = -0.1 * h, 1.1 * h, rng.uniform(0.02, 0.1)  # runs through the frame
        else:
            length = rng.uniform(0.2, 0.8) * h
            y0 = rng.uniform(-0.1 * h, h - 0.6 * length)
            y1, ends = y0 + length, rng.uniform(0.08, 0.3)
        scratches.append(
            {
                "x": _round(rng.uniform(0, w)),
                "y0": _round(y0),
                "y1": _round(y1),
                "angle": _round(rng.uniform(-max_angle, max_angle)),
                "bright": bool(rng.random() < float(cfg["bright_probability"])),
                "width": _round(uniform(rng, cfg["width"]) * scale),
                "opacity": _round(uniform(rng, cfg["opacity"])),
                "wobble": _round(uniform(rng, cfg["wobble"]) * scale),
                "fade": _round(ends),
                "breaks": int(rng.poisson(float(cfg["breaks"]))),
            }
        )
    return {
        "scratches": scratches,
        "bright_colour": damage_colour(rng, True),
        "dark_colour": damage_colour(rng, False),
        "seed": new_seed(rng),
    }


def _film_scratch(rng: np.random.Generator, s: Params, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, widths and opacities of one film scratch (see `apply_film_scratches`)."""
    y0, y1 = float(s["y0"]), float(s["y1"])
    x0 = float(s["x"])
    x1 = x0 + math.tan(math.radians(float(s["angle"]))) * (y1 - y0)
    step = max(4.0, 12.0 * scale)  # vertices: the wobble bends over 60-250 px
    points = wavy_path(rng, (x0, y0), (x1, y1), step, float(s["wobble"]), rng.uniform(60.0, 250.0) * scale)
    n = len(points)
    knots = max(3, int((y1 - y0) / (25.0 * scale)))
    widths = float(s["width"]) * smooth_profile(rng, n, knots, 0.3, 1.0)
    opacities = (
        float(s["opacity"])
        * smooth_profile(rng, n, knots, 0.45, 1.0)
        * end_fade(n, float(s["fade"]))
        * breaks(rng, n, int(s["breaks"]), (2.0 * scale / step, 15.0 * scale / step))
    )
    return points, np.maximum(widths, MIN_WIDTH), opacities


def apply_film_scratches(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Long, thin, near-vertical scratches along the film or print transport direction.

    Each runs from `y0` to `y1` (px; beyond the frame for a scratch through the whole picture),
    starting at column `x` and leaning `angle` degrees off vertical, with a low-frequency sideways
    wobble of about `wobble` px (wavelength 60-250 px at 512). Width varies smoothly along the
    scratch between 30% and 100% of `width` px, opacity between 45% and 100% of `opacity`; the ends
    fade over `fade` of the length; `breaks` gaps (2-15 px at 512 half length) interrupt it.
    """
    h, w = img.shape[:2]
    scale = image_scale((h, w))
    rng = np.random.default_rng(int(params["seed"]))
    paths: dict[bool, list[Stroke]] = {True: [], False: []}
    for s in params["scratches"]:
        points, widths, opacities = _film_scratch(rng, s, scale)
        keep = inside_frame(points, (h, w), 4.0)
        paths[bool(s["bright"])].append((points[keep], widths[keep], opacities[keep]))
    bright, dark = _polarity_maps((h, w), paths)
    return blend_polarities(img, bright, dark, params["bright_colour"], params["dark_colour"])


# --- scuffs -----------------------------------------------------------------------------


def sample_scuffs(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    h, w = shape
    scale = image_scale(shape)
    clusters = []
    for _ in range(randint(rng, cfg["clusters"])):
        length = uniform(rng, cfg["length"]) * scale
        clusters.append(
            {
                "x": _round(rng.uniform(0, w)),
                "y": _round(rng.uniform(0, h)),
                "angle": _round(rng.uniform(0.0, 180.0)),
                "strokes": randint(rng, cfg["strokes"]),
                "length": _round(length),
                "spread": _round(length * rng.uniform(0.1, 0.6)),
                "bright": bool(rng.random() < float(cfg["bright_probability"])),
                "width": _round(uniform(rng, cfg["width"]) * scale),
                "opacity": _round(uniform(rng, cfg["opacity"])),
                "haze": _round(uniform(rng, cfg["haze"])),
            }
        )
    return {
        "clusters": clusters,
        "bright_colour": damage_colour(rng, True),
        "dark_colour": damage_colour(rng, False),
        "seed": new_seed(rng),
    }


def _scuff_cluster(rng: np.random.Generator, c: Params, scale: float) -> list[Stroke]:
    """The strokes of one scuff cluster, all drawn at once: quadratic Béziers near the cluster's
    direction, each bowed, thinned and faded its own way (vectorised over the strokes: a cluster
    costs about what one stroke did)."""
    k = int(c["strokes"])
    angle = np.radians(float(c["angle"]) + rng.normal(0.0, 6.0, k))
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (k, 2)
    side = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    length = float(c["length"]) * rng.uniform(0.35, 1.0, k)
    centre = (
        np.array([float(c["x"]), float(c["y"])])
        + side * (rng.uniform(-0.5, 0.5, k) * float(c["spread"]))[:, None]
        + direction * (rng.normal(0.0, 0.25, k) * float(c["length"]))[:, None]
    )
    control = centre + side * (rng.uniform(-0.25, 0.25, k) * length)[:, None]  # bows a stroke by up to ~1/8
    half = direction * (length / 2)[:, None]
    start, end = centre - half, centre + half
    reverse = rng.random(k) < 0.5  # the grit travelled either way
    start, end = np.where(reverse[:, None], end, start), np.where(reverse[:, None], start, end)
    n = max(4, int(float(length.max()) / max(2.5, 4.0 * scale)))
    t = unit_steps(n)[None, :, None]
    points = (1 - t) ** 2 * start[:, None] + 2 * t * (1 - t) * control[:, None] + t**2 * end[:, None]  # (k, n, 2)
    # Width: 70-100% of `width`, times a smooth profile through 3 random knots in [0.5, 1].
    knots = rng.uniform(0.5, 1.0, (k, 3))
    profile = np.stack([np.interp(t[0, :, 0], [0.0, 0.5, 1.0], row) for row in knots])
    widths = float(c["width"]) * rng.uniform(0.7, 1.0, (k, 1)) * profile
    # Opacity: 50-100% of `opacity`, rising over the first 5-30% and falling over the last 25-50%.
    u = t[0, :, 0][None, :]
    head, tail = rng.uniform(0.05, 0.3, (k, 1)), rng.uniform(0.25, 0.5, (k, 1))
    ramp = np.clip(np.minimum(u / head, (1.0 - u) / tail), 0.0, 1.0)
    opacities = float(c["opacity"]) * rng.uniform(0.5, 1.0, (k, 1)) * ramp * ramp * (3.0 - 2.0 * ramp)
    widths = np.maximum(widths, MIN_WIDTH)
    return [(points[i], widths[i], opacities[i]) for i in range(k)]


def add_haze(strength: np.ndarray, c: Params) -> None:
    """Raise `strength` (in place) to a faint elliptical glow over a scuff cluster: abrasion dulls the
    print's gloss, which scans lighter. Peak `haze` is kept below the mask threshold (not a loss)."""
    peak = min(float(c["haze"]), 0.9 * MASK_THRESHOLD)
    if peak <= 0:
        return
    h, w = strength.shape
    along, across = 0.6 * float(c["length"]), 0.5 * float(c["spread"]) + 0.15 * float(c["length"])
    reach = 2.0 * along
    cx, cy = float(c["x"]), float(c["y"])
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, w)
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    angle = math.radians(float(c["angle"]))
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    u = (dx * math.cos(angle) + dy * math.sin(angle)) / along
    v = (dy * math.cos(angle) - dx * math.sin(angle)) / max(across, 1.0)
    region = strength[y0:y1, x0:x1]
    np.maximum(region, peak * np.exp(-(u * u + v * v)), out=region)


def apply_scuffs(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Short handling scratches in clusters: `strokes` roughly parallel curved strokes (direction
    `angle` degrees +- 6) of 35-100% of `length` px, spread over `spread` px across the cluster at
    (`x`, `y`), each `width` px wide at most and `opacity` opaque at most, starting abruptly or
    softly and tailing off, as grit dragged across the print leaves them."""
    h, w = img.shape[:2]
    scale = image_scale((h, w))
    rng = np.random.default_rng(int(params["seed"]))
    bright = np.zeros((h, w), dtype=np.float32)
    dark = np.zeros((h, w), dtype=np.float32)
    for c in params["clusters"]:
        add_haze(bright, c)
        draw_paths(bright if c["bright"] else dark, _scuff_cluster(rng, c, scale))
    return blend_polarities(img, bright, dark, params["bright_colour"], params["dark_colour"])


# --- cracks -----------------------------------------------------------------------------


def sample_cracks(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    h, w = shape
    scale = image_scale(shape)
    cracks = []
    for _ in range(randint(rng, cfg["count"])):
        if rng.random() < 0.4:  # from an edge, pointing inward (prints crack from where they were bent)
            edge = choice(rng, ["top", "bottom", "left", "right"])
            x, y = {
                "top": (rng.uniform(0, w), 0.0),
                "bottom": (rng.uniform(0, w), h - 1.0),
                "left": (0.0, rng.uniform(0, h)),
                "right": (w - 1.0, rng.uniform(0, h)),
            }[edge]
            inward = {"top": 90.0, "bottom": 270.0, "left": 0.0, "right": 180.0}[edge]
            angle = inward + rng.uniform(-50.0, 50.0)
        else:
            x, y, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.0, 360.0)
        cracks.append(
            {
                "x": _round(x),
                "y": _round(y),
                "angle": _round(angle),
                "length": _round(uniform(rng, cfg["length"]) * scale),
                "width": _round(uniform(rng, cfg["width"]) * scale),
                "bright": bool(rng.random() < float(cfg["bright_probability"])),
                "opacity": _round(uniform(rng, cfg["opacity"])),
            }
        )
    return {
        "cracks": cracks,
        "branching": uniform(rng, cfg["branching"]),
        "depth": int(cfg["depth"]),
        "bright_colour": damage_colour(rng, True),
        "dark_colour": damage_colour(rng, False),
        "seed": new_seed(rng),
    }


def crack_path(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, step: float) -> np.ndarray:
    """A jagged path from `start` heading `angle` radians, in steps of `step` px. The heading drifts
    slowly (a random walk: the crack meanders), swings over a few steps (irregular bends) and jitters
    at every step (jagged edges), so the crack is rough at every scale and never runs straight."""
    n = max(3, int(length / step) + 1)
    drift = np.cumsum(rng.normal(0.0, 0.05, n))
    swing = smooth_profile(rng, n, max(2, n // 4), -0.6, 0.6)
    heading = angle + drift + swing + rng.normal(0.0, 0.2, n)
    moves = step * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    moves[0] = 0.0
    return start + np.cumsum(moves, axis=0)


def _grow_crack(
    rng: np.random.Generator,
    strokes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    start: np.ndarray,
    angle: float,
    length: float,
    width: float,
    opacity: float,
    branch_rate: float,
    depth: int,
    step: float,
) -> None:
    """Append a crack (root at `start`, full width there, tapering to a hairline tip) and, recursively,
    its branches: `branch_rate` branches per px of length on average, each branch shorter, thinner,
    fainter and branching less often than its parent."""
    points = crack_path(rng, start, angle, length, step)
    n = len(points)
    t = unit_steps(n)
    gape = smooth_profile(rng, n, max(3, n // 4), 0.0, 1.0)  # where the crack opened wider, it shows more paper
    widths = np.maximum(width * (1.0 - t) ** 0.7 * (0.45 + 0.55 * gape), MIN_WIDTH)
    opacities = opacity * fade(n, 0.0, 0.3) * (0.5 + 0.5 * gape)
    strokes.append((points, widths, opacities))
    if depth <= 0:
        return
    for _ in range(int(rng.poisson(branch_rate * length))):
        k = int(rng.uniform(0.1, 0.8) * (n - 1))
        tangent = points[min(k + 1, n - 1)] - points[max(k - 1, 0)]
        heading = math.atan2(tangent[1], tangent[0]) + rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.1)
        _grow_crack(
            rng,
            strokes,
            points[k],
            heading,
            length * (1.0 - k / n) * rng.uniform(0.3, 0.7),
            max(float(widths[k]) * 0.7, MIN_WIDTH),
            opacity * rng.uniform(0.7, 1.0),
            branch_rate * 0.7,
            depth - 1,
            step,
        )


def apply_cracks(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Hairline cracks in the emulsion that meander and branch.

    Each crack grows in two arms from (`x`, `y`), one heading `angle` degrees and one the opposite
    way (together `length` px; 30% of cracks grow one way only), each a jagged random walk in steps
    of 3 px at 512 (at least 2.5 px; see `crack_path`). Branches leave at 25-65 degrees, `branching`
    per 100 px (at 512) on the main crack and fewer on each deeper level, down to `depth` levels.
    Width is at most `width` px at a crack's root and tapers to 0.3 px at every tip, varying along
    the way with opacity (a wider gape shows more paper); opacity is at most `opacity`.
    """
    h, w = img.shape[:2]
    scale = image_scale((h, w))
    rng = np.random.default_rng(int(params["seed"]))
    step = max(2.5, 3.0 * scale)
    rate = float(params["branching"]) / (100.0 * scale)
    bright = np.zeros((h, w), dtype=np.float32)
    dark = np.zeros((h, w), dtype=np.float32)
    for c in params["cracks"]:
        strokes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        start = np.array([float(c["x"]), float(c["y"])])
        angle, length = math.radians(float(c["angle"])), float(c["length"])
        share = rng.uniform(0.3, 0.7) if rng.random() < 0.7 else 1.0  # some cracks grow one way only
        for arm_angle, arm_length in ((angle, length * share), (angle + math.pi, length * (1.0 - share))):
            if arm_length > 2 * step:
                _grow_crack(
                    rng,
                    strokes,
                    start,
                    arm_angle,
                    arm_length,
                    float(c["width"]),
                    float(c["opacity"]),
                    rate,
                    int(params["depth"]),
                    step,
                )
        kept = [
            (pts[keep], wid[keep], opa[keep]) for pts, wid, opa in strokes for keep in [inside_frame(pts, (h, w), 2.0)]
        ]
        draw_paths(bright if c["bright"] else dark, kept)
    return blend_polarities(img, bright, dark, params["bright_colour"], params["dark_colour"])


OPS: list[Op] = [
    Op(
        "film_scratches",
        sample_film_scratches,
        apply_film_scratches,
        defaults={
            "count": [1, 4],
            "max_angle": 3.0,
            "bright_probability": 0.6,
            "width": [0.5, 2.5],
            "opacity": [0.5, 1.0],
            "wobble": [0.5, 3.0],
            "full_length_probability": 0.5,
            "breaks": 1.0,
        },
        label=1,
        doc=(
            "Long thin near-vertical scratches (film transport, print rollers); `count` per image, `max_angle` "
            "degrees off vertical, `bright_probability` of scraped (vs dark) scratches, `width` max px and "
            "`wobble` px at 512 short side, `opacity` max, `full_length_probability` of crossing the whole "
            "frame, `breaks` mean gaps per scratch."
        ),
        severities={
            "light": {"count": [1, 2], "width": [0.4, 1.5], "opacity": [0.4, 0.8]},
            "moderate": {},
            "heavy": {"count": [4, 9], "width": [1.0, 3.0], "opacity": [0.7, 1.0], "full_length_probability": 0.7},
        },
    ),
    Op(
        "scuffs",
        sample_scuffs,
        apply_scuffs,
        defaults={
            "clusters": [1, 3],
            "strokes": [3, 8],
            "length": [30.0, 110.0],
            "width": [0.5, 1.5],
            "opacity": [0.7, 1.0],
            "bright_probability": 0.85,
            "haze": [0.0, 0.1],
        },
        label=1,
        doc=(
            "Short curved handling scratches in clusters of roughly parallel strokes; `clusters` per image, "
            "`strokes` per cluster, `length` and `width` (max) px at 512 short side, `opacity` max, "
            "`bright_probability` of scraped (vs dirty) clusters, `haze` peak strength of the dulled-gloss glow "
            "around a cluster (kept below the mask threshold)."
        ),
        severities={
            "light": {"clusters": [1, 2], "strokes": [2, 5], "length": [20.0, 60.0]},
            "moderate": {},
            "heavy": {"clusters": [3, 6], "strokes": [4, 12], "length": [50.0, 160.0], "width": [0.6, 1.8]},
        },
    ),
    Op(
        "cracks",
        sample_cracks,
        apply_cracks,
        defaults={
            "count": [1, 3],
            "length": [100.0, 350.0],
            "width": [0.8, 1.6],
            "opacity": [0.7, 1.0],
            "branching": [0.5, 2.0],
            "depth": 2,
            "bright_probability": 0.65,
        },
        label=1,
        doc=(
            "Branching hairline cracks in the emulsion (white paper shows through, or dirt fills them dark); "
            "`count` per image, `length` px at 512 short side, `width` px at the root (tips taper to 0.3 px), "
            "`opacity` max, `branching` branches per 100 px at 512, `depth` levels of branches, "
            "`bright_probability` of white (vs dark) cracks."
        ),
        severities={
            "light": {"count": [1, 1], "length": [60.0, 200.0], "width": [0.6, 1.2], "branching": [0.3, 1.0]},
            "moderate": {},
            "heavy": {"count": [3, 6], "length": [200.0, 500.0], "width": [1.0, 2.0], "branching": [1.0, 3.0]},
        },
    ),
]
