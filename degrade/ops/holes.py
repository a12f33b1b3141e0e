"""Losses: blobs of missing emulsion, chipped and torn borders and corners, worn edges.

Where the emulsion (the gelatin layer holding the image) flakes or rubs off, the paper base shows
through: off-white, slightly warm, with a faint texture of its own. Where the print itself is
torn, what shows is whatever lay behind it on the scanner (a white lid, a grey mat, a dark bed),
usually framed by a thin bright band of paper fibres the tear exposed.

Geometry scales with the image's short side relative to 512 px (`scale = min(H, W) / 512`), so a
crop and a full scan of the same print look alike. Flakes, chips and tears are polygons made ragged
by midpoint displacement (`refine`): angular, coastline-like edges, as emulsion and paper break,
rasterised with exact area coverage. Worn edges, where emulsion is rubbed off in flecks rather than
broken, are a signed distance field roughened by `damage.fractal_noise`.

The local pieces of an op are blended once, in their union box (`blend_features`), which keeps large
images cheap; `spots` shares these helpers.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops import damage, strokes
from degrade.ops.base import Config, Op, Params, choice, new_seed, randint, standard_normal, uniform
from degrade.ops.damage import Feature, blend_features, edge_cover, image_scale, over, rounded

PAPER_TEXTURE = 0.025
"""Relative std of the paper base's own texture (a few % of its brightness)."""

EDGE_FEATHER = 1.0
"""Width (px at 512) of the anti-aliased ramp across an outline: the blur of a scan of a sharp edge."""

BACKGROUNDS = {"white": (0.93, 1.0), "grey": (0.66, 0.8), "dark": (0.02, 0.12)}
"""Brightness ranges of what a scanner shows behind a torn print: a white lid, a grey mat, a dark bed."""


# --- shared pieces ----------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, bounds: list[float]) -> float:
    """A size drawn log-uniformly in `[lo, hi]`: small chips are common, large losses rare."""
    lo, hi = float(bounds[0]), float(bounds[-1])
    return lo if lo == hi else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_paper(rng: np.random.Generator, cfg: Config) -> list[float]:
    """Paper-base RGB: brightness from `paper_brightness`, warmth (fraction of blue lost, a third of that of green)."""
    bright, warm = uniform(rng, cfg["paper_brightness"]), uniform(rng, cfg["paper_warmth"])
    return [round(bright, 4), round(bright * (1.0 - warm / 3.0), 4), round(bright * (1.0 - warm), 4)]


def paper_texture(rng: np.random.Generator, shape: tuple[int, int], paper: list[float], scale: float) -> np.ndarray:
    """The paper base over `shape`: `paper` colour with a fine grain (blurred white noise, about 1 px at 512)
    and a broad cloudiness (cells 24 px at 512), each of relative std `PAPER_TEXTURE` / 2."""
    sigma = max(0.6, 1.0 * scale)
    grain = cv2.GaussianBlur(standard_normal(rng, shape), (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    grain *= np.float32(PAPER_TEXTURE / 2.0 / max(float(grain.std()), 1e-6))
    grain += damage.smooth_noise(rng, shape, max(4.0, 24.0 * scale)) * np.float32(PAPER_TEXTURE / 2.0) + np.float32(1.0)
    return np.clip(grain[..., None] * np.asarray(paper, dtype=np.float32), 0.0, 1.0)


# --- holes ------------------------------------------------------------------------------


def sample_holes(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    holes = []
    for _ in range(randint(rng, cfg["count"])):
        dirty = rng.random() < float(cfg["dirty_rim_probability"])
        hole = {
            "x": float(rng.random()),
            "y": float(rng.random()),
            "radius": _log_uniform(rng, cfg["size"]),
            "aspect": uniform(rng, cfg["aspect"]),
            "angle": float(rng.uniform(0.0, math.pi)),
            "roughness": uniform(rng, cfg["roughness"]),
            "rim": uniform(rng, cfg["dirty_rim"]) if dirty else 0.0,
        }
        holes.append(rounded(hole))
    return {"holes": holes, "paper": sample_paper(rng, cfg), "seed": new_seed(rng)}


def refine(rng: np.random.Generator, pts: np.ndarray, roughness: float, step: float, closed: bool) -> np.ndarray:
    """Midpoint displacement of a polyline (N, 2): each segment's midpoint moves sideways by a normal draw of std
    `roughness` / 2 of the segment's length, level after level until segments are about `step` px: a ragged,
    coastline-like edge."""
    seg = (np.roll(pts, -1, axis=0) if closed else pts[1:]) - (pts if closed else pts[:-1])
    levels = max(0, math.ceil(math.log2(max(float(np.hypot(seg[:, 0], seg[:, 1]).max()), 1e-9) / step)))
    for _ in range(min(levels, 12)):
        start = pts if closed else pts[:-1]
        seg = (np.roll(pts, -1, axis=0) if closed else pts[1:]) - start
        sideways = seg[:, ::-1] * np.array([-1.0, 1.0])  # the left normal, as long as the segment
        merged = np.empty((2 * len(start), 2))
        merged[0::2] = start
        merged[1::2] = start + 0.5 * seg + sideways * (0.5 * roughness * rng.standard_normal(len(seg)))[:, None]
        pts = merged if closed else np.vstack([merged, pts[-1:]])
    return pts


def ragged_polygon(
    rng: np.random.Generator, radius: float, aspect: float, angle: float, roughness: float, step: float
) -> np.ndarray:
    """Outline (N, 2) of a flake of lost emulsion, in px around its centre: a jittered 6- to 10-gon on an ellipse of
    `radius` and `aspect` (long axis at `angle` rad), its corner radii varying by about `roughness`, `refine`d."""
    corners = rng.integers(6, 11)
    theta = (np.arange(corners) + rng.uniform(-0.35, 0.35, corners)) * (2.0 * math.pi / corners)
    reach = radius * np.exp(roughness * rng.standard_normal(corners))
    stretch = math.sqrt(aspect)
    x, y = reach * np.cos(theta) * stretch, reach * np.sin(theta) / stretch
    cos, sin = math.cos(angle), math.sin(angle)
    return refine(rng, np.stack([x * cos - y * sin, x * sin + y * cos], axis=1), roughness, step, closed=True)


def offset(pts: np.ndarray, widths: np.ndarray, closed: bool) -> np.ndarray:
    """`pts` moved `widths` px along their normals: outward for a closed outline, to the right (x right, y down:
    clockwise of the direction of travel) for an open path."""
    tangent = (np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)) if closed else np.gradient(pts, axis=0)
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    if closed:
        area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        normal *= -np.sign(area)  # positive shoelace area: the left normal points inside
    return pts + normal * widths[:, None]


def fill_coverage(polygons: list[np.ndarray], origin: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """Area coverage (H, W) float32 of filled `polygons` (px, image coordinates) in a box at `origin` (x, y) of `size`
    (rows, cols): rasterised at `strokes.SUPERSAMPLE` x and box-averaged, so edges are exactly anti-aliased."""
    ss, shift = strokes.SUPERSAMPLE, 4
    canvas = np.zeros((size[0] * ss, size[1] * ss), dtype=np.uint8)
    # Pixel centre (x, y) covers [x - 0.5, x + 0.5]: sub-pixel centres sit at (x - origin + 0.5) * ss - 0.5.
    fixed = [np.round(((p - origin + 0.5) * ss - 0.5) * (1 << shift)).astype(np.int32) for p in polygons]
    cv2.fillPoly(canvas, fixed, 255, lineType=cv2.LINE_8, shift=shift)
    return cv2.resize(canvas, (size[1], size[0]), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)


def _hole(rng: np.random.Generator, img: np.ndarray, hole: dict, paper: list[float], scale: float) -> Feature | None:
    """One loss: its box and its (strength, colour) there, or None when it lies outside the image."""
    h, w = img.shape[:2]
    radius = max(float(hole["radius"]) * min(h, w), 0.5)
    rough = float(hole["roughness"])
    step = max(1.0, 1.2 * scale)  # outline segments (px): finer than the eye resolves at 512
    centre = np.array([float(hole["x"]) * (w - 1), float(hole["y"]) * (h - 1)])
    outline = ragged_polygon(rng, radius, float(hole["aspect"]), float(hole["angle"]), rough, step)
    # Flakes that came off beside the main loss: small ragged polygons just outside its outline.
    flakes = [outline]
    for _ in range(rng.integers(0, 4)):
        edge = outline[rng.integers(len(outline))]
        at = edge * (1.0 + rng.uniform(0.05, 0.3))
        flakes.append(
            at + ragged_polygon(rng, radius * rng.uniform(0.04, 0.15), 1.5, rng.uniform(0, math.pi), rough, step)
        )
    rim_width = 2.5 * scale
    pad = 3.0 * rim_width + 2.0
    lo = np.floor(np.min([f.min(axis=0) for f in flakes], axis=0) + centre - pad)
    hi = np.ceil(np.max([f.max(axis=0) for f in flakes], axis=0) + centre + pad)
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]) + 1, w), min(int(hi[1]) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    cover = fill_coverage([f + centre for f in flakes], (x0, y0), (y1 - y0, x1 - x0))
    colour = paper_texture(rng, cover.shape, paper, scale)
    rim = float(hole["rim"])
    if rim <= 0:
        return y0, x0, cover, colour
    # Dirt caught under the curled emulsion edge: a faint dark band just outside the loss, patchy along it.
    # Distance (px) to the loss; a loss too small to cover half a pixel has none: the rim then fades to nothing.
    outside = np.minimum(cv2.distanceTransform((cover < 0.5).astype(np.uint8), cv2.DIST_L2, 3), 20.0 * rim_width)
    patches = np.clip(0.7 + 0.4 * damage.smooth_noise(rng, cover.shape, max(3.0, 0.5 * radius)), 0.2, 1.0)
    band = rim * np.exp(-outside / np.float32(rim_width)) * patches
    strength, target = over(cover, colour, band, img[y0:y1, x0:x1] * np.float32(0.35))
    return y0, x0, strength, target


def apply_holes(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Emulsion losses: flakes of paper base (colour `paper`, textured by `PAPER_TEXTURE`), each a `ragged_polygon`
    of mean `radius` (fraction of the short side) and `aspect` at `angle` (rad), its outline as rough as
    `roughness`, with up to three small flakes beside it, exactly anti-aliased; where `rim` > 0, dirt under the
    curled emulsion edge darkens a patchy band about 2.5 px (at 512) wide outside it, at that peak strength."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(int(params["seed"]))
    scale = image_scale((h, w))
    drawn = (_hole(rng, img, hole, params["paper"], scale) for hole in params["holes"])
    return blend_features(img, [f for f in drawn if f is not None])


# --- torn edges -------------------------------------------------------------------------

SIDES = ("top", "right", "bottom", "left")
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")


def sample_torn_edges(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    counts = {kind: randint(rng, cfg[kind]) for kind in ("corners", "chipped_edges", "worn_edges")}
    if not any(counts.values()):  # the op fired: something is damaged
        counts[choice(rng, list(counts))] = 1
    features = []
    for corner in rng.permutation(4)[: counts["corners"]]:
        size = uniform(rng, cfg["corner_size"])
        features.append(
            rounded(
                {
                    "kind": "corner",
                    "corner": CORNERS[int(corner)],
                    "a": size * float(rng.uniform(0.6, 1.4)),
                    "b": size * float(rng.uniform(0.6, 1.4)),
                    "roughness": uniform(rng, cfg["roughness"]),
                }
            )
        )
    for side in rng.permutation(4)[: counts["chipped_edges"]]:
        chips = [
            [
                round(float(rng.random()), 4),
                round(_log_uniform(rng, cfg["chip_size"]), 4),
                round(float(rng.uniform(0.4, 1.0)), 4),
            ]
            for _ in range(randint(rng, cfg["chips_per_edge"]))
        ]
        features.append(
            {
                "kind": "chips",
                "side": SIDES[int(side)],
                "chips": chips,
                "roughness": round(uniform(rng, cfg["roughness"]), 4),
            }
        )
    for side in rng.permutation(4)[: counts["worn_edges"]]:
        features.append(
            rounded(
                {
                    "kind": "worn",
                    "side": SIDES[int(side)],
                    "depth": uniform(rng, cfg["worn_depth"]),
                    "roughness": uniform(rng, cfg["roughness"]),
                }
            )
        )
    background = None
    if rng.random() < float(cfg["background_probability"]):
        name = choice(rng, list(cfg["backgrounds"]))
        level = uniform(rng, BACKGROUNDS[name])
        background = [round(level * float(rng.uniform(0.97, 1.0)), 4) for _ in range(3)]
    return {
        "features": features,
        "paper": sample_paper(rng, cfg),
        "background": background,
        "fibre_width": uniform(rng, cfg["fibre_width"]),
        "seed": new_seed(rng),
    }


def _orient(arr: np.ndarray, side: str) -> np.ndarray:
    """A canonical band (rows = distance from the top edge) turned to lie along `side`."""
    if side in ("left", "right"):
        arr = arr.swapaxes(0, 1)
    if side == "right":
        arr = arr[:, ::-1]
    if side == "bottom":
        arr = arr[::-1]
    return arr


def _band_origin(side: str, depth: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Top row and left column of a band `depth` px deep along `side` of an image of `shape`."""
    return {"top": (0, 0), "left": (0, 0), "bottom": (shape[0] - depth, 0), "right": (0, shape[1] - depth)}[side]


def _place(pts: np.ndarray, where: str, shape: tuple[int, int]) -> np.ndarray:
    """Points (x, y) of a canonical frame moved into the image: corners are drawn at the top-left (x right, y down),
    sides along the top as (position along the edge, depth)."""
    h, w = shape
    x, y = (pts[:, 1], pts[:, 0]) if where in ("left", "right") else (pts[:, 0], pts[:, 1])
    if where in ("right", "top_right", "bottom_right"):
        x = (w - 1) - x
    if where in ("bottom", "bottom_left", "bottom_right"):
        y = (h - 1) - y
    return np.stack([x, y], axis=1)


def _corner(rng: np.random.Generator, feature: dict, short: int, fibre: float, step: float):
    """A torn corner at the top-left: the torn-away polygon and the same grown by a band of paper fibres up to
    `fibre` px wide. The cut runs from `a` along the top edge to `b` down the left edge (fractions of the short
    side), starting and ending just outside the image."""
    a, b = max(float(feature["a"]) * short, 2.0), max(float(feature["b"]) * short, 2.0)
    path = refine(rng, np.array([[a, -2.0], [-2.0, b]]), float(feature["roughness"]), step, closed=False)
    widths = fibre * strokes.smooth_profile(rng, len(path), max(2, len(path) // 12), 0.25, 1.0)
    corner = np.array([[-2.0, -2.0]])
    # Travelling from the top edge to the left one, the print lies to the left: fibres grow there (negative offset).
    return np.vstack([path, corner]), np.vstack([offset(path, -widths, closed=False), corner])


def _chips(rng: np.random.Generator, feature: dict, length: int, short: int, fibre: float, step: float):
    """Bites out of the top edge: ragged polygons [position along the edge (0..1), radius (fraction of the short
    side), depth / radius] centred just outside it, and the same grown by a band of paper fibres."""
    lost, grown = [], []
    for t, r, q in feature["chips"]:
        radius = max(r * short, 1.0)
        outline = ragged_polygon(rng, radius, 1.0 / q, 0.0, float(feature["roughness"]), step)
        outline += [t * (length - 1), -0.2 * radius * q]
        widths = fibre * strokes.smooth_profile(rng, len(outline), max(2, len(outline) // 12), 0.25, 1.0)
        lost.append(outline)
        grown.append(offset(outline, widths, closed=True))
    return lost, grown


def _worn(rng: np.random.Generator, feature: dict, length: int, room: int, paper: list, scale: float):
    """Strength and colour of a band along the top edge, about `depth` (fraction of the short side) deep and varying
    along the edge, where the emulsion is rubbed off in flecks (completely near the very edge) to the paper base."""
    depth = max(float(feature["depth"]) * min(length, room), 0.5)  # the short side is min(length, room)
    rough = float(feature["roughness"])
    rows = min(int(depth * (1.6 + 2.5 * rough)) + 4, room)
    profile = np.clip(0.6 + 0.6 * damage.smooth_noise(rng, (1, length), max(length / 5.0, 2.0)), 0.0, 1.6)
    ys = np.arange(rows, dtype=np.float32)[:, None]
    noise = np.clip(damage.fractal_noise(rng, (rows, length), max(2.0, depth), octaves=3), -2.5, 2.5)
    dist = depth * profile - ys + rough * depth * noise
    flecks = damage.smooth_noise(rng, (rows, length), max(1.5, 2.0 * scale))
    gone = np.clip(0.75 + 0.35 * flecks + np.maximum(dist, 0.0) / depth, 0.0, 1.0)
    colour = (flecks * np.float32(PAPER_TEXTURE) + np.float32(1.0))[..., None] * np.asarray(paper, dtype=np.float32)
    return edge_cover(dist, max(0.6, EDGE_FEATHER * scale)) * gone, np.clip(colour, 0.0, 1.0)


def _tear(
    rng: np.random.Generator, shape: tuple[int, int], lost: list, grown: list, paper: list, background
) -> Feature | None:
    """Box, strength and colour of a tear: `background` inside the `lost` polygons, framed by bright paper fibres
    out to the `grown` ones; or, without a background, paper base (the emulsion torn off) inside `lost`."""
    h, w = shape
    outer = grown if background is not None else lost
    lo = np.floor(np.min([p.min(axis=0) for p in outer], axis=0)) - 1
    hi = np.ceil(np.max([p.max(axis=0) for p in outer], axis=0)) + 2
    x0, y0, x1, y1 = max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 <= x0 or y1 <= y0:
        return None
    size = (y1 - y0, x1 - x0)
    cover = fill_coverage(lost, (x0, y0), size)
    if background is None:
        return y0, x0, cover, paper_texture(rng, size, paper, image_scale((h, w)))
    fibres = fill_coverage(grown, (x0, y0), size)
    bright = np.minimum(np.asarray(paper, dtype=np.float32) * np.float32(1.04), 1.0)  # freshly exposed, cleaner
    return (y0, x0, *over(cover, np.asarray(background, dtype=np.float32), fibres, bright))


def apply_torn_edges(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Damage entering from the border. A torn `corner` cut off along a ragged line from `a` along the horizontal
    edge to `b` along the vertical one (fractions of the short side); `chips`: ragged bites [position along the
    side, radius, depth/radius] out of one `side`; a `worn` band about `depth` (fraction of the short side) deep
    whose emulsion is rubbed off in flecks. Torn parts show `background` (RGB) framed by up to `fibre_width` px (at
    512) of bright paper fibres, or paper base when `background` is null; worn parts always show paper base."""
    h, w = img.shape[:2]
    short = min(h, w)
    scale = image_scale((h, w))
    rng = np.random.default_rng(int(params["seed"]))
    fibre = max(0.5, float(params["fibre_width"]) * scale)
    step = max(1.0, 1.2 * scale)  # outline segments (px): finer than the eye resolves at 512
    features = []
    for feature in params["features"]:
        kind = feature["kind"]
        where = feature["corner"] if kind == "corner" else feature["side"]
        length, room = (w, h) if where in ("top", "bottom") else (h, w)
        if kind == "worn":
            s, colour = _worn(rng, feature, length, room, params["paper"], scale)
            features.append((*_band_origin(where, s.shape[0], (h, w)), _orient(s, where), _orient(colour, where)))
            continue
        if kind == "corner":
            lost, grown = (_place(p, where, (h, w)) for p in _corner(rng, feature, short, fibre, step))
            lost, grown = [lost], [grown]
        else:
            lost, grown = _chips(rng, feature, length, short, fibre, step)
            lost, grown = [_place(p, where, (h, w)) for p in lost], [_place(p, where, (h, w)) for p in grown]
        drawn = _tear(rng, (h, w), lost, grown, params["paper"], params["background"])
        if drawn is not None:
            features.append(drawn)
    return blend_features(img, features)


_PAPER = {"paper_brightness": [0.86, 0.97], "paper_warmth": [0.0, 0.12]}

OPS: list[Op] = [
    Op(
        "holes",
        sample_holes,
        apply_holes,
        defaults={
            "count": [1, 3],
            "size": [0.008, 0.08],
            "aspect": [1.0, 2.2],
            "roughness": [0.2, 0.4],
            "dirty_rim_probability": 0.5,
            "dirty_rim": [0.25, 0.55],
            **_PAPER,
        },
        label=2,
        doc=(
            "Emulsion losses showing the paper base; `count` range per image, `size` range of the radius (fraction "
            "of the short side, log-uniform), `aspect` range (long/short axis), `roughness` range (outline "
            "raggedness, 0.2 = gently ragged, 0.4 = jagged), `dirty_rim_probability` p of a dark rim, `dirty_rim` "
            "its peak strength range, "
            "`paper_brightness` and `paper_warmth` (fraction of blue lost) ranges of the paper colour."
        ),
        severities={
            "light": {"count": [1, 2], "size": [0.006, 0.04]},
            "moderate": {"count": [1, 3], "size": [0.008, 0.08]},
            "heavy": {"count": [3, 7], "size": [0.012, 0.14]},
        },
    ),
    Op(
        "torn_edges",
        sample_torn_edges,
        apply_torn_edges,
        defaults={
            "corners": [0, 1],
            "corner_size": [0.04, 0.15],
            "chipped_edges": [0, 1],
            "chips_per_edge": [1, 4],
            "chip_size": [0.006, 0.03],
            "worn_edges": [0, 2],
            "worn_depth": [0.003, 0.012],
            "roughness": [0.15, 0.3],
            "background_probability": 0.6,
            "backgrounds": ["white", "grey", "dark"],
            "fibre_width": [1.5, 5.0],
            **_PAPER,
        },
        label=2,
        doc=(
            "Torn corners, chipped and worn borders; `corners`, `chipped_edges`, `worn_edges` count ranges (at "
            "least one feature is drawn), `corner_size` range of the cut's legs and `chip_size` of a chip's radius "
            "(fractions of the short side), `chips_per_edge` range, `worn_depth` range (fraction of the short "
            "side), `roughness` range (outline raggedness), `background_probability` p that a tear shows the "
            "scanner background (one of `backgrounds`: white, grey, dark) rather than paper base, `fibre_width` "
            "range (px at 512) of the bright paper band along a tear, `paper_brightness`, `paper_warmth` ranges."
        ),
        severities={
            "light": {"corners": [0, 0], "chipped_edges": [0, 1], "worn_edges": [0, 1], "worn_depth": [0.002, 0.006]},
            "moderate": {"corners": [0, 1], "chipped_edges": [0, 1], "worn_edges": [0, 2]},
            "heavy": {
                "corners": [1, 2],
                "corner_size": [0.08, 0.22],
                "chipped_edges": [1, 2],
                "worn_edges": [1, 3],
                "worn_depth": [0.006, 0.02],
            },
        },
    ),
]
