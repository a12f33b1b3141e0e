"""Spots and stains: dust specks and fibres, mould and foxing, water-stain tide lines, fingerprint smudges.

Sizes scale with the image's short side relative to 512 px (`scale = min(H, W) / 512`), so a crop and
a full scan of the same print look alike. Stains tint the picture (their colour is a darkened or
browned copy of it) rather than paint over it: detail shows through, as it does on a real print.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops import damage, strokes
from degrade.ops.base import Config, Op, Params, new_seed, randint, uniform
from degrade.ops.damage import Feature, blend_features, edge_cover, image_scale, rounded

REFERENCE_MEGAPIXELS = 512 * 512 / 1e6
"""Area of a 512 x 512 image in megapixels: densities are per megapixel of the image seen at 512 px short side."""


def _reference_megapixels(shape: tuple[int, int]) -> float:
    """The image's area in megapixels once resized to a 512 px short side: the same print, scanned at any
    resolution, gets the same number of specks; a wider print gets proportionally more."""
    h, w = shape
    return REFERENCE_MEGAPIXELS * max(h, w) / min(h, w)


def _ellipse_frame(shape: tuple[int, int], origin: tuple[int, int], centre, radius: float, aspect: float, angle: float):
    """Normalised elliptical coordinates (u, v) over a box of `shape` at `origin` (row, col): (0, 0) at `centre`
    (x, y), unit distance on an ellipse of mean radius `radius` px and `aspect`, its long axis at `angle` rad."""
    ys, xs = np.ogrid[origin[0] : origin[0] + shape[0], origin[1] : origin[1] + shape[1]]
    dx, dy = (xs - centre[0]).astype(np.float32), (ys - centre[1]).astype(np.float32)
    cos, sin = math.cos(angle), math.sin(angle)
    stretch = math.sqrt(aspect)
    return (dx * cos + dy * sin) / np.float32(radius * stretch), (dy * cos - dx * sin) * np.float32(stretch / radius)


def _box(centre, reach: float, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) of the square of half-side `reach` px around `centre` (x, y), clipped; None if empty."""
    h, w = shape
    x0, x1 = max(int(centre[0] - reach), 0), min(int(centre[0] + reach) + 2, w)
    y0, y1 = max(int(centre[1] - reach), 0), min(int(centre[1] + reach) + 2, h)
    return (y0, x0, y1, x1) if x1 > x0 and y1 > y0 else None


def tinted(patch: np.ndarray, tint: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`patch` (h, w, 3) multiplied per pixel by the RGB tint `tint` + `weight` (h, w) x (`other` - `tint`).
    (OpenCV per-channel maps: several times faster than numpy broadcasting over a last axis of 3.)"""
    factors = [np.float32(tint[c]) + np.float32(other[c] - tint[c]) * weight for c in range(3)]
    return cv2.multiply(patch, cv2.merge(factors))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S (3x^2 - 2x^3) between: soft edges without a visible ramp's corners."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --- dust -------------------------------------------------------------------------------


def sample_dust(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    dark = uniform(rng, cfg["dark_level"])
    bright = uniform(rng, cfg["bright_level"])
    return {
        "specks": int(rng.poisson(uniform(rng, cfg["density"]) * _reference_megapixels(shape))),
        "bright_fraction": uniform(rng, cfg["bright_fraction"]),
        "size": [float(v) for v in cfg["size"]],
        "fibres": randint(rng, cfg["fibres"]),
        "dark": [round(dark * 1.05, 4), round(dark, 4), round(dark * 0.9, 4)],  # dirt is a little warm
        "bright": [round(bright, 4)] * 3,
        "seed": new_seed(rng),
    }


def _specks(
    rng: np.random.Generator, canvas: np.ndarray, count: int, size: list[float], bright_fraction: float, scale: float
) -> np.ndarray:
    """Stamp `count` irregular specks into `canvas` (signed strength: > 0 bright, < 0 dark), in place; return the
    flat indices of the pixels they touch.

    Diameters are log-uniform from `size[0]` to `size[1]` px at 512; the outline is a circle of radius R
    perturbed by random 2nd and 3rd harmonics (grains, not discs). Coverage is the one-pixel ramp
    clip(R(theta) - r + 0.5, 0, 1) at pixel centres, rescaled so each speck's total equals its true area:
    sub-pixel specks come out faint rather than a full pixel.
    """
    h, w = canvas.shape
    if count <= 0:
        return np.empty(0, dtype=np.intp)
    lo, hi = float(size[0]), float(size[-1])
    radius = (0.5 * scale * lo * (hi / lo) ** rng.random(count)).astype(np.float32)
    cx, cy = rng.uniform(-0.5, w - 0.5, count), rng.uniform(-0.5, h - 0.5, count)
    opacity = rng.uniform(0.7, 1.0, count) * np.where(rng.random(count) < bright_fraction, 1.0, -1.0)
    amp = rng.uniform(0.0, [0.35, 0.2], (count, 2))
    phase = rng.uniform(0.0, 2.0 * math.pi, (count, 2))
    # a cos(n theta - phi) = (a cos phi) cos n theta + (a sin phi) sin n theta: polynomials in x / r, y / r.
    cosine, sine = (amp * np.cos(phase)).astype(np.float32), (amp * np.sin(phase)).astype(np.float32)
    c2, c3, s2, s3 = (part[:, i, None, None] for part in (cosine, sine) for i in (0, 1))
    k = math.ceil(float(radius.max()) * 1.6 + 0.5)  # stamp half-size (px)
    offsets = np.arange(-k, k + 1, dtype=np.float32)
    ix, iy = np.round(cx).astype(int), np.round(cy).astype(int)
    dx = offsets[None, None, :] - (cx - ix).astype(np.float32)[:, None, None]
    dy = offsets[None, :, None] - (cy - iy).astype(np.float32)[:, None, None]
    r = np.sqrt(dx * dx + dy * dy) + np.float32(1e-6)
    x, y = dx / r, dy / r
    shape = (
        1.0
        + c2 * (x * x - y * y)
        + s2 * (2.0 * x * y)
        + c3 * (x * (x * x - 3.0 * y * y))
        + s3 * (y * (3.0 * x * x - y * y))
    )
    cover = np.clip(radius[:, None, None] * shape - r + np.float32(0.5), 0.0, 1.0)
    area = np.pi * radius**2 * (1.0 + 0.5 * (amp**2).sum(axis=1)).astype(np.float32)
    cover *= (area / np.maximum(cover.sum(axis=(1, 2)), 1e-6) * opacity).astype(np.float32)[:, None, None]
    np.clip(cover, -1.0, 1.0, out=cover)

    rows = np.broadcast_to(iy[:, None, None] + np.arange(-k, k + 1)[None, :, None], cover.shape)
    cols = np.broadcast_to(ix[:, None, None] + np.arange(-k, k + 1)[None, None, :], cover.shape)
    keep = (cover != 0) & (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rows, cols, cover = rows[keep], cols[keep], cover[keep]
    # Where specks overlap, the stronger bright one and then the stronger dark one win (dark over bright):
    # assigned in that order, sorted so the winner is written last (a fancy assignment keeps the last write).
    order = np.argsort(np.where(cover > 0, cover, 2.0 - cover), kind="stable")
    canvas[rows[order], cols[order]] = cover[order]
    return rows * w + cols


def _fibre_path(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Points (N, 2) of a curly fibre or hair, 10 to 60 px long at 512, turning by up to 1.5 turns along its length."""
    h, w = shape
    length = rng.uniform(10.0, 60.0) * scale
    step = max(0.5, 0.7 * scale)
    n = max(3, int(length / step) + 1)
    turning = rng.uniform(0.5, 3.0) * math.pi * rng.choice([-1.0, 1.0])
    curvature = strokes.smooth_profile(rng, n, 4, -1.0, 1.0) + rng.uniform(-0.3, 0.3)
    heading = rng.uniform(0.0, 2.0 * math.pi) + np.cumsum(curvature) * (turning / n)
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * step
    return np.cumsum(steps, axis=0) + [rng.uniform(0, w), rng.uniform(0, h)]


def _fibre(rng: np.random.Generator, canvas: np.ndarray, bright_fraction: float, scale: float) -> np.ndarray:
    """Draw one curly fibre (0.4 to 1 px wide at 512, fading at both ends) into the signed `canvas`, bright with
    probability `bright_fraction`, within its bounding box; return the flat indices of the pixels it touches."""
    h, w = canvas.shape
    path = _fibre_path(rng, (h, w), scale)
    n = len(path)
    widths = np.maximum(rng.uniform(0.4, 1.0) * scale * strokes.smooth_profile(rng, n, 3, 0.6, 1.0), 0.3)
    opacity = rng.uniform(0.5, 0.9) * strokes.end_fade(n, 0.15)
    sign = 1.0 if rng.random() < bright_fraction else -1.0
    pad = float(widths.max()) + 2.0
    x0, y0 = max(int(path[:, 0].min() - pad), 0), max(int(path[:, 1].min() - pad), 0)
    x1, y1 = min(int(path[:, 0].max() + pad) + 1, w), min(int(path[:, 1].max() + pad) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return np.empty(0, dtype=np.intp)
    stroke = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    strokes.draw_stroke(stroke, path - [x0, y0], widths, opacity)
    region = canvas[y0:y1, x0:x1]
    np.copyto(region, stroke * np.float32(sign), where=stroke > np.abs(region))
    ys, xs = np.nonzero(stroke)
    return (ys + y0) * w + (xs + x0)


def apply_dust(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Dust on the print and its negative: `specks` irregular grains of `size` [lo, hi] px diameter at 512,
    a share `bright_fraction` of them bright (colour `bright`: dust on the negative printed as white) and the rest
    dark (colour `dark`: dirt on the print), opacity 0.7 to 1; plus `fibres` thin curly hairs of either kind.
    Only the touched pixels are blended: the cost follows the dust, not the image size."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    scale = image_scale((h, w))
    bright_fraction = float(params["bright_fraction"])
    signed = np.zeros((h, w), dtype=np.float32)
    touched = [_specks(rng, signed, int(params["specks"]), params["size"], bright_fraction, scale)]
    touched += [_fibre(rng, signed, bright_fraction, scale) for _ in range(int(params["fibres"]))]
    where = np.unique(np.concatenate(touched))
    values = signed.reshape(-1)[where]
    colour = np.where((values > 0)[:, None], np.float32(params["bright"]), np.float32(params["dark"]))
    out = img.copy()
    flat = out.reshape(-1, 3)
    blended, hit = damage.blend(flat[where][None], np.abs(values)[None], colour[None].astype(np.float32))
    flat[where] = blended[0]
    mask = np.zeros((h, w), dtype=bool)
    mask.reshape(-1)[where] = hit[0]
    return out, mask


# --- foxing -----------------------------------------------------------------------------


def sample_foxing(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    clusters = [
        [
            round(float(rng.random()), 4),
            round(float(rng.random()), 4),
            round(uniform(rng, cfg["spread"]), 4),
            randint(rng, cfg["spots"]),
        ]
        for _ in range(randint(rng, cfg["clusters"]))
    ]
    warmth = uniform(rng, cfg["warmth"])
    depth = uniform(rng, cfg["depth"])
    tint = [1.0 - depth * 0.4, 1.0 - depth * (0.4 + 0.35 * warmth), 1.0 - depth * (0.4 + 0.55 * warmth)]
    return {
        "clusters": clusters,
        "size": [float(v) for v in cfg["size"]],
        "opacity": [float(v) for v in cfg["opacity"]],
        "tint": [round(v, 4) for v in tint],
        "seed": new_seed(rng),
    }


def _cluster(rng: np.random.Generator, img: np.ndarray, cluster: list, params: Params, scale: float) -> Feature | None:
    """One cluster of foxing spots around [x, y] (fractions of the image), scattered with std `spread` (fraction of
    the short side), `count` spots: its box, strength, and colour (the picture multiplied by `tint`, darker at
    the spots' cores)."""
    h, w = img.shape[:2]
    short = min(h, w)
    x, y, spread, count = cluster
    lo, hi = (float(v) * short for v in params["size"])
    lo = max(lo, 0.5)
    radii = lo * (hi / lo) ** (rng.random(count) ** 1.5)  # many small, a few large
    middle = np.array([x * (w - 1), y * (h - 1)])
    centres = middle + rng.normal(0.0, spread * short, (count, 2))
    reach = float(np.max(np.abs(centres - middle) + 1.7 * radii[:, None])) + 2.0
    box = _box(middle, reach, (h, w))
    if box is None:
        return None
    y0, x0, y1, x1 = box
    strength = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    core = np.zeros_like(strength)
    # One warp field per cluster, its cells half the largest spot: big spots get lobes, small ones a slight skew.
    warp = damage.fractal_noise(rng, strength.shape, max(2.0, 0.5 * float(radii.max())), octaves=3)
    mottle = damage.smooth_noise(rng, strength.shape, max(2.0, 2.5 * scale))
    opacity = rng.uniform(*params["opacity"], count).astype(np.float32)
    stretch = np.sqrt(rng.uniform(1.0, 1.6, count))
    angle = rng.uniform(0.0, math.pi, count)
    # Every spot on a stamp as large as the largest, all at once; stamps are merged with a running maximum.
    k = math.ceil(1.7 * float(radii.max()) + 1.0)  # the clipped warp shrinks d by at most 0.6x: reach 1 / 0.6
    offsets = np.arange(-k, k + 1)
    ix, iy = np.round(centres[:, 0]).astype(int), np.round(centres[:, 1]).astype(int)
    dx = (offsets[None, None, :] - (centres[:, 0] - ix)[:, None, None]).astype(np.float32)
    dy = (offsets[None, :, None] - (centres[:, 1] - iy)[:, None, None]).astype(np.float32)
    cos, sin = (f(angle).astype(np.float32)[:, None, None] for f in (np.cos, np.sin))
    a = (radii * stretch).astype(np.float32)[:, None, None]
    b = (radii / stretch).astype(np.float32)[:, None, None]
    u, v = (dx * cos + dy * sin) / a, (dy * cos - dx * sin) / b
    rows = np.broadcast_to(iy[:, None, None] + offsets[None, :, None] - y0, u.shape)
    cols = np.broadcast_to(ix[:, None, None] + offsets[None, None, :] - x0, u.shape)
    inside = (rows >= 0) & (rows < y1 - y0) & (cols >= 0) & (cols < x1 - x0) & (u * u + v * v < 2.8)
    rows, cols = rows[inside], cols[inside]
    d = np.sqrt(u[inside] ** 2 + v[inside] ** 2) * (1.0 + 0.2 * np.clip(warp[rows, cols], -2.0, 2.0))
    np.maximum.at(
        strength, (rows, cols), np.broadcast_to(opacity[:, None, None], u.shape)[inside] * _smoothstep((1.0 - d) / 0.6)
    )
    np.maximum.at(core, (rows, cols), _smoothstep(1.0 - d / 0.45))  # the darker heart, inner 45 % of the radius
    strength *= np.clip(0.85 + 0.15 * mottle, 0.0, 1.0)
    tint = np.asarray(params["tint"], dtype=np.float32)
    # The core browns further: the tint's loss grows by up to 60 % there.
    return y0, x0, strength, tinted(img[y0:y1, x0:x1], tint, np.clip(1.0 - (1.0 - tint) * 1.6, 0.0, 1.0), core)


def apply_foxing(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Foxing and mould: soft, irregular rust-brown spots in `clusters` [x, y, spread, count], radii `size` [lo, hi]
    (fractions of the short side, skewed small), peak opacity in `opacity` [lo, hi]; the damage colour is the
    picture multiplied by `tint` (RGB), browner at each spot's core."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    scale = image_scale((h, w))
    drawn = (_cluster(rng, img, cluster, params, scale) for cluster in params["clusters"])
    return blend_features(img, [f for f in drawn if f is not None])


# --- water stains -----------------------------------------------------------------------


def sample_water_stain(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    stains = []
    for _ in range(randint(rng, cfg["count"])):
        stain = {
            "x": float(rng.random()),
            "y": float(rng.random()),
            "radius": uniform(rng, cfg["size"]),
            "aspect": uniform(rng, cfg["aspect"]),
            "angle": float(rng.uniform(0.0, math.pi)),
            "rings": randint(rng, cfg["rings"]),
            "rim": uniform(rng, cfg["rim"]),
            "rim_width": uniform(rng, cfg["rim_width"]),
            "interior": uniform(rng, cfg["interior"]),
            "roughness": uniform(rng, cfg["roughness"]),
        }
        stains.append(rounded(stain))
    return {"stains": stains, "seed": new_seed(rng)}


RIM_TINT = np.array([0.6, 0.47, 0.32], dtype=np.float32)
"""Multiplier (RGB) of the tide line at full strength: dirt and dissolved size left brown where the water dried last."""

INTERIOR_TINT = np.array([1.0, 0.88, 0.6], dtype=np.float32)
"""Multiplier (RGB) of the wetted area at full strength: a faint yellow-brown discolouration."""


def _coarse_grid(box: tuple[int, int, int, int], factor: int) -> tuple[tuple[int, int], tuple[float, float]]:
    """Shape of a grid `factor` x coarser than `box` (y0, x0, y1, x1), and the full-resolution coordinates (x, y) of
    its first sample: sample j sits at x0 + (j + 0.5) * factor - 0.5, where `cv2.resize` expects it."""
    y0, x0, y1, x1 = box
    shape = (-(-(y1 - y0) // factor), -(-(x1 - x0) // factor))
    return shape, (x0 + 0.5 * factor - 0.5, y0 + 0.5 * factor - 0.5)


def _refine_grid(field: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """A coarse `field` enlarged `factor` x (bilinear) and cropped to `shape`: smooth fields cost their own detail."""
    if factor == 1:
        return field
    big = cv2.resize(field, (field.shape[1] * factor, field.shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    return big[: shape[0], : shape[1]]


def _stain(rng: np.random.Generator, img: np.ndarray, stain: dict, scale: float) -> Feature | None:
    """One water stain: its box, strength (tide lines over a faint interior), and colour.

    The outline's distance field, its variation along the rim and the interior are smooth: they are computed
    on a grid up to 4x coarser and enlarged; only the sharp tide lines are drawn at full resolution."""
    h, w = img.shape[:2]
    radius = max(float(stain["radius"]) * min(h, w), 2.0)
    rough = float(stain["roughness"])
    centre = (float(stain["x"]) * (w - 1), float(stain["y"]) * (h - 1))
    # Noise clipped to 3 std moves the outline at most 3 x roughness x radius: the box holds it and its rim.
    box = _box(centre, radius * math.sqrt(float(stain["aspect"])) * (1.0 + 3.0 * rough) + 4.0, (h, w))
    if box is None:
        return None
    y0, x0, y1, x1 = box
    size = (y1 - y0, x1 - x0)
    factor = int(np.clip(radius / 24.0, 1, 4))  # the finest outline noise is 0.05 x radius: >= 1.2 coarse pixels
    coarse, (sx, sy) = _coarse_grid(box, factor)
    origin = ((centre[0] - sx) / factor, (centre[1] - sy) / factor)
    u, v = _ellipse_frame(coarse, (0, 0), origin, radius / factor, float(stain["aspect"]), float(stain["angle"]))
    d = np.sqrt(u * u + v * v)
    noise = np.clip(damage.fractal_noise(rng, coarse, max(0.4 * radius / factor, 2.0), octaves=4), -3.0, 3.0)
    inside = radius * (1.0 - d + rough * noise)  # full-res px, positive inside
    along = np.clip(0.75 + 0.25 * damage.smooth_noise(rng, coarse, max(0.3 * radius / factor, 2.0)), 0.4, 1.0)
    mottle = np.clip(0.7 + 0.3 * damage.smooth_noise(rng, coarse, max(0.15 * radius / factor, 2.0)), 0.0, 1.0)
    interior = float(stain["interior"]) * _smoothstep(inside / np.float32(0.25 * radius + 1.0)) * mottle
    inside, along, interior = (_refine_grid(f, factor, size) for f in (inside, along, interior))

    feather = max(0.6, 0.8 * scale)
    rim_width = max(0.5, float(stain["rim_width"]) * scale)
    rims = np.zeros(size, dtype=np.float32)
    setback = 0.0
    for ring in range(int(stain["rings"])):
        level = inside - np.float32(setback * radius)
        line = edge_cover(level, feather) * np.exp(np.maximum(level, 0.0) * np.float32(-1.0 / rim_width))
        np.maximum(rims, np.float32(float(stain["rim"]) * 0.65**ring) * line * along, out=rims)
        setback += float(rng.uniform(0.03, 0.12))
    rim_wins = (rims >= interior).astype(np.float32)
    return y0, x0, np.maximum(rims, interior), tinted(img[y0:y1, x0:x1], INTERIOR_TINT, RIM_TINT, rim_wins)


def apply_water_stain(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Water stains: each an irregular patch of mean `radius` (fraction of the short side), `aspect`, `angle`
    (rad), its outline displaced by fractal noise of `roughness` x radius. Along the outline runs a tide line:
    sharp outside, fading inwards over `rim_width` px (at 512), peak strength `rim` (varying along it), tinted by
    `RIM_TINT`; `rings` - 1 more lines lie further in, each a little fainter. The wetted interior takes
    `INTERIOR_TINT` at strength up to `interior` (below the mask threshold: seen, but not masked)."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    scale = image_scale((h, w))
    drawn = (_stain(rng, img, stain, scale) for stain in params["stains"])
    return blend_features(img, [f for f in drawn if f is not None])


# --- smudges ----------------------------------------------------------------------------


def sample_smudge(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    smudges = []
    for _ in range(randint(rng, cfg["count"])):
        smudge = {
            "x": float(rng.uniform(0.1, 0.9)),
            "y": float(rng.uniform(0.1, 0.9)),
            "size": uniform(rng, cfg["size"]),
            "aspect": uniform(rng, cfg["aspect"]),
            "angle": float(rng.uniform(0.0, math.pi)),
            "period": uniform(rng, cfg["period"]),
            "opacity": uniform(rng, cfg["opacity"]),
            "light": bool(rng.random() < float(cfg["light_probability"])),
        }
        smudges.append(rounded(smudge))
    return {"smudges": smudges, "seed": new_seed(rng)}


def _smudge(rng: np.random.Generator, img: np.ndarray, smudge: dict, scale: float) -> Feature | None:
    """One fingerprint: its box, strength (ridges in a soft, patchy ellipse), and colour.

    Every field but the ridges themselves is smooth and computed at the image's resolution; the ridge
    profile, a cosine of the (smooth) distance to the core, is evaluated on a grid up to 4x finer where
    ridges are finer than ~3 px and averaged down, so they fade to an even haze rather than alias."""
    h, w = img.shape[:2]
    radius = max(float(smudge["size"]) * min(h, w), 2.0)
    aspect = float(smudge["aspect"])
    centre = (float(smudge["x"]) * (w - 1), float(smudge["y"]) * (h - 1))
    box = _box(centre, 1.25 * radius * math.sqrt(aspect) + 2.0, (h, w))
    if box is None:
        return None
    y0, x0, y1, x1 = box
    size = (y1 - y0, x1 - x0)
    period = float(smudge["period"]) * scale
    u, v = _ellipse_frame(size, (y0, x0), centre, radius, aspect, float(smudge["angle"]))
    d = np.sqrt(u * u + v * v)
    envelope = _smoothstep((1.0 - d + 0.12 * damage.smooth_noise(rng, size, max(0.5 * radius, 2.0))) / 0.45)
    # Ridges run around an off-centre core segment (a point gives a whorl, a longer segment a loop); a smooth
    # warp bends them into a print's irregular arches, and a finer field breaks them into ridge fragments.
    start = rng.uniform(-0.3, 0.3, 2)
    length, heading = rng.uniform(0.0, 0.5), rng.uniform(0.0, 2.0 * math.pi)
    along = length * np.array([math.cos(heading), math.sin(heading)])
    pu, pv = u - np.float32(start[0]), (v - np.float32(start[1])) * np.float32(1.2)
    t = np.clip((pu * along[0] + pv * along[1]) / max(float(along @ along), 1e-9), 0.0, 1.0)
    phase = np.hypot(pu - t * along[0], pv - t * along[1]) * np.float32(radius)
    phase += damage.smooth_noise(rng, size, max(0.6 * radius, 2.0)) * np.float32(1.5 * period)
    phase *= np.float32(2.0 * math.pi / period)
    ss = min(4, max(1, math.ceil(3.0 / period)))
    if ss > 1:
        phase = cv2.resize(phase, (size[1] * ss, size[0] * ss), interpolation=cv2.INTER_LINEAR)
    ridges = np.cos(phase)
    ridges += np.float32(1.0)
    ridges *= ridges  # (1 + cos)^2, 0 to 4: narrow ridges, wide furrows
    if ss > 1:
        ridges = cv2.resize(ridges, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    breaks = np.clip(1.5 * damage.smooth_noise(rng, size, max(2.0 * period, 1.5)) + 1.3, 0.0, 1.0)
    pressure = np.clip(0.55 + 0.6 * damage.smooth_noise(rng, size, max(0.35 * radius, 2.0)), 0.0, 1.0)
    strength = float(smudge["opacity"]) * envelope * pressure * (0.2 + 0.2 * ridges * breaks)  # haze + ridges
    patch = img[y0:y1, x0:x1]
    # Grease darkens (less light scattered back) or, dried and dusty, veils the picture with a light haze.
    target = patch * np.float32(0.3) + np.float32(0.7) if smudge["light"] else patch * np.float32(0.5)
    return y0, x0, strength.astype(np.float32), target


def apply_smudge(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprint smudges: ridges `period` px apart (at 512) in concentric, warped loops around an off-centre core,
    inside a soft, patchy ellipse of semi-axis `size` (fraction of the short side), `aspect`, `angle` (rad).
    Strength is `opacity` x ridge profile x uneven finger pressure, so only the stronger ridges are masked.
    The damage colour is the picture darkened by half (grease) or, where `light`, veiled 70 % towards white."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    scale = image_scale((h, w))
    drawn = (_smudge(rng, img, smudge, scale) for smudge in params["smudges"])
    return blend_features(img, [f for f in drawn if f is not None])


OPS: list[Op] = [
    Op(
        "dust",
        sample_dust,
        apply_dust,
        defaults={
            "density": [200.0, 600.0],
            "size": [0.5, 3.0],
            "bright_fraction": [0.2, 0.7],
            "fibres": [0, 2],
            "dark_level": [0.03, 0.2],
            "bright_level": [0.88, 1.0],
        },
        label=3,
        doc=(
            "Dust specks and fibres; `density` range of specks per megapixel of the image at 512 px short side "
            "(Poisson count), `size` [lo, hi] speck diameter (px at 512), `bright_fraction` range (share of white "
            "specks), `fibres` count range per image, `dark_level` and `bright_level` grey-level ranges."
        ),
        severities={
            "light": {"density": [40.0, 120.0], "fibres": [0, 1]},
            "moderate": {"density": [200.0, 600.0], "fibres": [0, 2]},
            "heavy": {"density": [600.0, 1400.0], "size": [0.5, 4.0], "fibres": [2, 6]},
        },
    ),
    Op(
        "foxing",
        sample_foxing,
        apply_foxing,
        defaults={
            "clusters": [1, 3],
            "spots": [4, 14],
            "spread": [0.02, 0.08],
            "size": [0.003, 0.03],
            "opacity": [0.35, 0.85],
            "depth": [0.5, 0.8],
            "warmth": [0.6, 1.0],
        },
        label=3,
        doc=(
            "Foxing and mould spots; `clusters` and `spots` (per cluster) count ranges, `spread` range (cluster std, "
            "fraction of the short side), `size` [lo, hi] spot radius (fraction of the short side), `opacity` "
            "[lo, hi] spot peak strength, `depth` range (darkening at full strength), `warmth` range (0 = grey, "
            "1 = rust brown)."
        ),
        severities={
            "light": {"clusters": [1, 1], "spots": [2, 6], "size": [0.002, 0.015]},
            "moderate": {"clusters": [1, 3], "spots": [4, 14]},
            "heavy": {"clusters": [3, 6], "spots": [6, 20], "size": [0.004, 0.045]},
        },
    ),
    Op(
        "water_stain",
        sample_water_stain,
        apply_water_stain,
        defaults={
            "count": [1, 1],
            "size": [0.1, 0.3],
            "aspect": [1.0, 1.6],
            "rings": [1, 2],
            "rim": [0.4, 0.75],
            "rim_width": [2.0, 5.0],
            "interior": [0.06, 0.16],
            "roughness": [0.06, 0.14],
        },
        label=4,
        doc=(
            "Water stains with tide lines; `count` range per image, `size` range of the mean radius (fraction of "
            "the short side), `aspect` range, `rings` range (nested tide lines), `rim` range of the tide line's "
            "peak strength, `rim_width` range (px at 512, its inward fade), `interior` range of the wetted "
            "area's strength (keep below 0.2: unmasked), `roughness` range (outline noise / radius)."
        ),
        severities={
            "light": {"count": [1, 1], "size": [0.06, 0.18], "rings": [1, 1], "rim": [0.3, 0.5]},
            "moderate": {"count": [1, 1], "size": [0.1, 0.3], "rings": [1, 2]},
            "heavy": {"count": [1, 3], "size": [0.15, 0.4], "rings": [1, 3], "rim": [0.5, 0.85]},
        },
    ),
    Op(
        "smudge",
        sample_smudge,
        apply_smudge,
        defaults={
            "count": [1, 2],
            "size": [0.05, 0.1],
            "aspect": [1.2, 1.7],
            "period": [2.0, 4.0],
            "opacity": [0.25, 0.5],
            "light_probability": 0.35,
        },
        label=4,
        doc=(
            "Fingerprint smudges; `count` range per image, `size` range of the semi-axis (fraction of the short "
            "side), `aspect` range, `period` range of the ridge spacing (px at 512), `opacity` range of the peak "
            "strength, `light_probability` p of a light haze rather than a dark greasy print."
        ),
        severities={
            "light": {"count": [1, 1], "opacity": [0.22, 0.35]},
            "moderate": {"count": [1, 2], "opacity": [0.25, 0.5]},
            "heavy": {"count": [2, 4], "size": [0.07, 0.13], "opacity": [0.35, 0.6]},
        },
    ),
]
