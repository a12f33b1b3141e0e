"""Generate the bundled scratch and paper textures (assets/scratch_textures/) and their README, deterministically.

    python tools/make_scratch_textures.py [--out assets/scratch_textures] [--seed 2020]

Scratch textures are 8-bit grayscale fields of bright damage on black, in the manner of scanned scratch
textures (Wan et al., CVPR 2020): long near-parallel film scratches, scuffs, branching cracks, abraded
patches, crazing and mixes, drawn as strokes of varying width and intensity with fading ends, then given a
scan's softness: a faint glow, granular roughness inside the scratches and a faint hazy, grainy background
(mostly below the threshold the `texture_scratches` op applies). Paper textures are gray (0.5 = neutral)
surface grain: fibres, mottling, blotches, a silk finish.

Each texture draws from its own generator, seeded by (seed, CRC-32 of its file name), so one texture can be
regenerated alone (tests do) and adding a texture changes no other. Same seed, same pixels; with the same
zlib, the same bytes.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from PIL import Image

from degrade.ops.damage import fractal_noise, smooth_noise
from degrade.ops.strokes import draw_stroke, end_fade, smooth_profile, wavy_path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "assets" / "scratch_textures"
DEFAULT_SEED = 2020
Field = np.ndarray  # float32 (H, W) in [0, 1]


# --- strokes ---------------------------------------------------------------------------------


def scratch(
    canvas: Field,
    rng: np.random.Generator,
    points: np.ndarray,
    width: float,
    intensity: float,
    *,
    fade: float = 0.15,
    gaps: float = 0.0,
) -> None:
    """One scratch along `points`: width wanders between 0.55x and 1.35x `width` px and tapers at the ends,
    brightness flickers between about 0.25x and 1x `intensity` and fades to 0 over `fade` of the length at both
    ends; `gaps` in [0, 1) breaks the scratch where a slow random profile falls below it (skipping stylus)."""
    n = len(points)
    slow, fast = max(2, n // 40), max(2, n // 6)
    taper = 0.35 + 0.65 * end_fade(n, fade)
    widths = width * smooth_profile(rng, n, slow, 0.55, 1.35) * taper
    alpha = intensity * smooth_profile(rng, n, slow, 0.45, 1.0) * smooth_profile(rng, n, fast, 0.55, 1.0)
    alpha *= end_fade(n, fade)
    if gaps > 0:
        gate = smooth_profile(rng, n, max(2, n // 25), 0.0, 1.0)
        alpha *= np.clip((gate - gaps) / 0.08, 0.0, 1.0)
    draw_stroke(canvas, points, np.maximum(widths, 0.3), alpha)


def arc_path(
    rng: np.random.Generator, centre: np.ndarray, radius: float, a0: float, a1: float, wobble: float
) -> np.ndarray:
    """Points about 3 px apart on a circular arc from angle `a0` to `a1` (radians), radius wobbling by `wobble` px."""
    n = max(2, int(abs(a1 - a0) * radius / 3.0))
    angles = np.linspace(a0, a1, n)
    r = radius + wobble * smooth_profile(rng, n, max(2, n // 30), -1.0, 1.0)
    return centre + np.stack([np.cos(angles) * r, np.sin(angles) * r], axis=1)


def straight(
    rng: np.random.Generator, centre: np.ndarray, angle: float, length: float, wobble: float, wavelength: float
) -> np.ndarray:
    """A wavy path of `length` px through `centre` at `angle` radians (0 = along x)."""
    half = 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
    return wavy_path(rng, centre - half, centre + half, 3.0, wobble, wavelength)


# --- damage families ---------------------------------------------------------------------------


def bright(rng: np.random.Generator) -> float:
    """A relative brightness in [0.3, 1], skewed bright: most scratches are white, some faint."""
    return 1.0 - 0.7 * float(rng.random()) ** 2


def film_lines(
    canvas: Field, rng: np.random.Generator, count: int, spread: float, width: float, intensity: float, gaps: float
) -> None:
    """`count` long near-parallel scratches (transport scratches): a common direction near vertical, each
    within `spread` degrees of it, 0.3-1.5x the canvas long, random lognormal widths around `width` px."""
    size = canvas.shape[0]
    base = np.deg2rad(90.0 + rng.uniform(-8.0, 8.0))
    for _ in range(count):
        angle = base + np.deg2rad(rng.normal(0.0, spread))
        centre = rng.uniform([-0.05, 0.0], [1.05, 1.0]) * size
        length = rng.uniform(0.3, 1.5) * size
        path = straight(rng, centre, angle, length, rng.uniform(0.5, 4.0), rng.uniform(120.0, 500.0))
        scratch(
            canvas,
            rng,
            path,
            width * rng.lognormal(0.0, 0.45),
            intensity * bright(rng),
            fade=rng.uniform(0.05, 0.25),
            gaps=rng.uniform(0.0, gaps),
        )


def scuffs(
    canvas: Field,
    rng: np.random.Generator,
    clusters: int,
    per_cluster: tuple[int, int],
    length: float,
    width: float,
    intensity: float,
) -> None:
    """`clusters` bundles of short near-parallel strokes (something dragged across the print): each bundle
    has a random direction and 3-30 strokes of about `length` px spread over a few tens of px sideways."""
    size = canvas.shape[0]
    for _ in range(clusters):
        centre = rng.uniform(0.05, 0.95, 2) * size
        angle = rng.uniform(0.0, np.pi)
        normal = np.array([-np.sin(angle), np.cos(angle)])
        along = np.array([np.cos(angle), np.sin(angle)])
        spread = rng.uniform(8.0, 60.0)
        level = intensity * bright(rng)
        for _ in range(int(rng.integers(per_cluster[0], per_cluster[1] + 1))):
            at = centre + normal * rng.normal(0.0, spread / 2) + along * rng.normal(0.0, length / 2)
            path = straight(
                rng,
                at,
                angle + rng.normal(0.0, 0.06),
                length * rng.lognormal(0.0, 0.5),
                rng.uniform(0.2, 1.5),
                rng.uniform(30.0, 120.0),
            )
            scratch(
                canvas, rng, path, width * rng.lognormal(0.0, 0.4), level * bright(rng), fade=rng.uniform(0.15, 0.4)
            )


def crack(
    canvas: Field,
    rng: np.random.Generator,
    start: np.ndarray,
    angle: float,
    length: float,
    width: float,
    intensity: float,
    depth: int,
) -> None:
    """A jagged crack `length` px long from `start`, zig-zagging around a slowly drifting direction, thinning
    toward its tip, branching off (at 20-60 degrees, shorter and thinner) up to `depth` levels deep."""
    step = 3.0
    n = max(3, int(length / step))
    drift = np.cumsum(rng.normal(0.0, 0.06, n))
    heading = angle + drift + rng.normal(0.0, 0.45, n)
    points = start + np.cumsum(step * np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)
    widths = width * np.linspace(1.0, 0.35, n) * smooth_profile(rng, n, max(2, n // 15), 0.7, 1.3)
    alpha = intensity * smooth_profile(rng, n, max(2, n // 10), 0.5, 1.0) * end_fade(n, 0.08) ** 0.5
    draw_stroke(canvas, points, np.maximum(widths, 0.3), alpha)
    if depth <= 0:
        return
    for _ in range(int(rng.poisson(1.0 + length / 250.0))):
        at = int(rng.integers(n // 6, max(n // 6 + 1, n - 3)))
        turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 1.05)
        crack(
            canvas,
            rng,
            points[at],
            heading[at] + turn,
            length * rng.uniform(0.2, 0.55),
            widths[at] * 0.75,
            intensity * rng.uniform(0.6, 1.0),
            depth - 1,
        )


def cracks(
    canvas: Field, rng: np.random.Generator, count: int, length: float, width: float, intensity: float, depth: int
) -> None:
    """`count` branching cracks of about `length` px, starting anywhere in random directions."""
    size = canvas.shape[0]
    for _ in range(count):
        crack(
            canvas,
            rng,
            rng.uniform(0.1, 0.9, 2) * size,
            rng.uniform(0.0, 2 * np.pi),
            length * rng.uniform(0.6, 1.4),
            width,
            intensity * rng.uniform(0.6, 1.0),
            depth,
        )


def region(rng: np.random.Generator, shape: tuple[int, int], cell: float, cover: float) -> Field:
    """A soft blotchy region covering about `cover` of the canvas (fractal noise through a soft threshold)."""
    noise = fractal_noise(rng, shape, cell, octaves=4)
    level = float(np.quantile(noise, 1.0 - cover))
    return np.clip((noise - level) / 0.6 + 0.5, 0.0, 1.0).astype(np.float32)


def abrasion(
    canvas: Field, rng: np.random.Generator, strokes: int, cover: float, width: float, intensity: float
) -> None:
    """A densely abraded patch (rubbed surface): `strokes` short fine strokes in a common direction within a
    blotchy region of about `cover` of the canvas, each as bright as the region is strong, plus fine speckle."""
    shape = canvas.shape
    area = region(rng, shape, shape[0] / 3, cover)
    angle = rng.uniform(0.0, np.pi)
    ys, xs = np.nonzero(area > 0.3)
    picks = rng.integers(0, len(ys), strokes)
    for y, x in zip(ys[picks], xs[picks], strict=True):
        strength = float(area[y, x])
        path = straight(
            rng,
            np.array([x, y], dtype=np.float64),
            angle + rng.normal(0.0, 0.3),
            rng.lognormal(np.log(25.0), 0.6),
            0.8,
            40.0,
        )
        scratch(
            canvas, rng, path, width * rng.lognormal(0.0, 0.35), intensity * strength * rng.uniform(0.2, 1.0), fade=0.3
        )
    speckle = (rng.random(shape) < 0.015 * area).astype(np.float32) * rng.uniform(0.2, 0.8, shape).astype(np.float32)
    canvas[:] = np.maximum(canvas, cv2.GaussianBlur(speckle, (0, 0), 0.6) * 2.0 * intensity)


def crazing(canvas: Field, rng: np.random.Generator, cells: int, cover: float, width: float, intensity: float) -> None:
    """Crazing (a network of fine cracks in dried emulsion or varnish): the edges of a Voronoi diagram of
    `cells` random sites, drawn jagged and thin, visible only in a soft region of about `cover` of the canvas."""
    from scipy.spatial import Voronoi

    size = canvas.shape[0]
    area = region(rng, canvas.shape, size / 2.5, cover)
    sites = rng.uniform(-0.1, 1.1, (cells, 2)) * size
    diagram = Voronoi(sites)
    for a, b in diagram.ridge_vertices:
        if a < 0 or b < 0:
            continue
        p, q = diagram.vertices[a], diagram.vertices[b]
        mid = np.clip(((p + q) / 2).astype(int), 0, size - 1)
        strength = float(area[mid[1], mid[0]])
        if strength < 0.05 or np.linalg.norm(q - p) < 2.0:
            continue
        path = wavy_path(rng, p, q, 2.0, rng.uniform(0.5, 2.0), 12.0)
        scratch(
            canvas,
            rng,
            path,
            width * rng.lognormal(0.0, 0.3),
            intensity * strength * rng.uniform(0.4, 1.0),
            fade=0.04,
            gaps=rng.uniform(0.0, 0.3),
        )


def arcs(canvas: Field, rng: np.random.Generator, count: int, width: float, intensity: float) -> None:
    """`count` long curved scratches (circular rubbing, a ring dragged over the print): arcs of large radius."""
    size = canvas.shape[0]
    for _ in range(count):
        radius = rng.uniform(0.3, 1.2) * size
        centre = rng.uniform(0.0, 1.0, 2) * size + rng.normal(0.0, radius / 2, 2)
        a0 = rng.uniform(0.0, 2 * np.pi)
        path = arc_path(rng, centre, radius, a0, a0 + rng.uniform(0.3, 1.2) * size / radius, rng.uniform(0.5, 3.0))
        scratch(
            canvas,
            rng,
            path,
            width * rng.lognormal(0.0, 0.4),
            intensity * bright(rng),
            fade=rng.uniform(0.1, 0.3),
            gaps=rng.uniform(0.0, 0.2),
        )


def meander(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, bend: float) -> np.ndarray:
    """Points 2 px apart along a smoothly curving path of `length` px from `start`, heading first at `angle`
    radians; its curvature wanders smoothly within +-`bend` radians per 100 px."""
    n = max(3, int(length / 2.0))
    curvature = smooth_profile(rng, n, max(2, n // 40), -bend, bend) * (2.0 / 100.0)
    heading = angle + np.cumsum(curvature)
    return start + np.cumsum(2.0 * np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)


def hairlines(canvas: Field, rng: np.random.Generator, count: int, width: float, intensity: float) -> None:
    """`count` long, very thin, meandering hairline scratches (smoothly curving, 0.3-1x the canvas long)."""
    size = canvas.shape[0]
    for _ in range(count):
        path = meander(
            rng,
            rng.uniform(0.0, 1.0, 2) * size,
            rng.uniform(0.0, 2 * np.pi),
            rng.uniform(0.3, 1.0) * size,
            rng.uniform(0.2, 1.2),
        )
        scratch(canvas, rng, path, width * rng.lognormal(0.0, 0.3), intensity * bright(rng), fade=0.2)


# --- the scan's look ------------------------------------------------------------------------------


def scan_look(canvas: Field, rng: np.random.Generator, *, rough: float, glow: float, haze: float) -> Field:
    """What a scanner makes of drawn damage: a slight optical blur, granular brightness inside the scratches
    (`rough`: relative amplitude), a faint glow around them (`glow`: fraction of a wide blur) and a faint grainy
    haze patchily over the background (`haze`: peak value), mostly below the op's soft threshold."""
    soft = cv2.GaussianBlur(canvas, (0, 0), 0.55)
    grain = cv2.GaussianBlur(rng.standard_normal(canvas.shape).astype(np.float32), (0, 0), 0.7)
    grain /= float(grain.std())
    out = soft * np.clip(1.0 + rough * grain, 0.0, None)
    out = np.maximum(out, glow * cv2.GaussianBlur(soft, (0, 0), 4.0))
    patches = np.clip(fractal_noise(rng, canvas.shape, canvas.shape[0] / 4, octaves=3), 0.0, None) / 3.0
    veil = haze * np.clip(patches * (1.0 + 0.6 * grain), 0.0, 1.0)
    return np.clip(np.maximum(out, veil), 0.0, 1.0)


def to_uint8(img: Field) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- recipes ---------------------------------------------------------------------------------------


def scratch_texture(
    rng: np.random.Generator, size: int, layers: list[tuple[str, dict[str, Any]]], look: dict[str, float]
) -> np.ndarray:
    """A scratch texture of `size` x `size` px: the damage families in `layers` (name, params) drawn in order
    on black (overlaps keep the brighter), then `scan_look(**look)`."""
    canvas = np.zeros((size, size), dtype=np.float32)
    for family, params in layers:
        FAMILIES[family](canvas, rng, **params)
    return to_uint8(scan_look(canvas, rng, **look))


FAMILIES: dict[str, Callable[..., None]] = {
    f.__name__: f for f in (film_lines, scuffs, cracks, abrasion, crazing, arcs, hairlines)
}


def fibres(rng: np.random.Generator, shape: tuple[int, int], count: int, length: float) -> Field:
    """`count` short curly fibres about `length` px long, half brighter and half darker: values in [-1, 1]."""
    light, dark = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for i in range(count):
        centre = rng.uniform(0.0, 1.0, 2) * np.array(shape[::-1])
        path = straight(rng, centre, rng.uniform(0.0, np.pi), length * rng.lognormal(0.0, 0.5), 1.5, 8.0)
        n = len(path)
        draw_stroke(
            light if i % 2 else dark, path, np.full(n, rng.uniform(0.5, 1.2)), rng.uniform(0.3, 1.0) * end_fade(n, 0.3)
        )
    return light - dark


def paper_texture(
    rng: np.random.Generator,
    size: int,
    mottle: float,
    mottle_cell: float,
    fibre: float,
    fibre_count: int,
    blotch: float,
    silk: float,
    grain: float,
) -> np.ndarray:
    """A gray paper-surface texture of `size` x `size` px around 0.5 (neutral for overlay / soft light):
    low-frequency `mottle` (amplitude, features `mottle_cell` px), `fibre` (amplitude of `fibre_count` fibres),
    soft `blotch` spots (amplitude), an anisotropic `silk` finish (amplitude) and per-pixel `grain`."""
    shape = (size, size)
    out = np.full(shape, 0.5, dtype=np.float32)
    if mottle:
        out += mottle * 0.35 * fractal_noise(rng, shape, mottle_cell, octaves=5)
    if fibre:
        out += fibre * cv2.GaussianBlur(fibres(rng, shape, fibre_count, 10.0), (0, 0), 0.5)
    if blotch:
        spots = region(rng, shape, size / 6, 0.12) - region(rng, shape, size / 10, 0.08)
        out += blotch * cv2.GaussianBlur(spots, (0, 0), 3.0)
    if silk:
        noise = rng.standard_normal(shape).astype(np.float32)
        a = cv2.filter2D(noise, -1, cv2.getGaussianKernel(9, 2.0) @ cv2.getGaussianKernel(3, 0.6).T)
        b = cv2.filter2D(noise, -1, cv2.getGaussianKernel(3, 0.6) @ cv2.getGaussianKernel(9, 2.0).T)
        weave = a / float(a.std()) + b / float(b.std())  # short streaks both ways: a fine woven sheen
        out += silk * weave / float(weave.std())
    if grain:
        fine = cv2.GaussianBlur(
            smooth_noise(rng, shape, 1.0) + rng.standard_normal(shape).astype(np.float32), (0, 0), 0.6
        )
        out += grain * fine / float(fine.std())
    out += 0.5 - float(out.mean())
    return to_uint8(out)


class Recipe(NamedTuple):
    """How one texture file is made: what it shows, a generator function, its canvas size and its parameters."""

    about: str
    make: Callable[..., np.ndarray]
    size: int
    params: dict[str, Any]


LOOK = {"rough": 0.35, "glow": 0.12, "haze": 0.07}

RECIPES: dict[str, Recipe] = {
    "scratch_film_lines.png": Recipe(
        "many long, thin, near-parallel transport scratches, some broken",
        scratch_texture, 1024, {
        "layers": [("film_lines", {"count": 45, "spread": 2.0, "width": 2.6, "intensity": 1.0, "gaps": 0.35})],
        "look": LOOK,
    }),
    "scratch_scuffs.png": Recipe(
        "bundles of short parallel scuffs in random directions",
        scratch_texture, 1024, {
        "layers": [("scuffs", {"clusters": 26, "per_cluster": (4, 30), "length": 70.0, "width": 2.0,
                               "intensity": 1.0})],
        "look": LOOK,
    }),
    "scratch_cracks.png": Recipe(
        "jagged branching cracks",
        scratch_texture, 1024, {
        "layers": [("cracks", {"count": 7, "length": 420.0, "width": 3.0, "intensity": 1.0, "depth": 3})],
        "look": LOOK,
    }),
    "scratch_abrasion.png": Recipe(
        "densely abraded patches of fine short strokes and speckle, a few long scratches",
        scratch_texture, 1024, {
        "layers": [("abrasion", {"strokes": 2500, "cover": 0.35, "width": 1.3, "intensity": 1.0}),
                   ("film_lines", {"count": 8, "spread": 6.0, "width": 2.0, "intensity": 0.8, "gaps": 0.3})],
        "look": {**LOOK, "haze": 0.1},
    }),
    "scratch_crazing.png": Recipe(
        "crazing: a polygonal network of fine cracks fading in and out",
        scratch_texture, 1024, {
        "layers": [("crazing", {"cells": 450, "cover": 0.5, "width": 2.1, "intensity": 1.0})],
        "look": LOOK,
    }),
    "scratch_mix_long.png": Recipe(
        "long scratches with scuff bundles and a crack",
        scratch_texture, 1024, {
        "layers": [("film_lines", {"count": 14, "spread": 10.0, "width": 2.6, "intensity": 1.0, "gaps": 0.25}),
                   ("scuffs", {"clusters": 10, "per_cluster": (3, 14), "length": 60.0, "width": 1.8,
                               "intensity": 0.9}),
                   ("cracks", {"count": 2, "length": 300.0, "width": 2.6, "intensity": 1.0, "depth": 2})],
        "look": LOOK,
    }),
    "scratch_mix_curved.png": Recipe(
        "long curved scratches and meandering hairlines with a few scuffs",
        scratch_texture, 1024, {
        "layers": [("arcs", {"count": 12, "width": 2.4, "intensity": 1.0}),
                   ("hairlines", {"count": 10, "width": 1.3, "intensity": 0.9}),
                   ("scuffs", {"clusters": 8, "per_cluster": (3, 12), "length": 50.0, "width": 1.8,
                               "intensity": 0.9})],
        "look": LOOK,
    }),
    "scratch_sparse.png": Recipe(
        "a few prominent long scratches and hairlines (light damage)",
        scratch_texture, 1024, {
        "layers": [("film_lines", {"count": 5, "spread": 25.0, "width": 3.5, "intensity": 1.0, "gaps": 0.15}),
                   ("hairlines", {"count": 4, "width": 1.4, "intensity": 0.9}),
                   ("scuffs", {"clusters": 3, "per_cluster": (3, 8), "length": 60.0, "width": 2.0,
                               "intensity": 0.9})],
        "look": LOOK,
    }),
    "paper_fibre.png": Recipe(
        "paper fibres and fine grain",
        paper_texture, 512, {
        "mottle": 0.08, "mottle_cell": 64.0, "fibre": 0.22, "fibre_count": 5000, "blotch": 0.0, "silk": 0.0,
        "grain": 0.03,
    }),
    "paper_mottled.png": Recipe(
        "low-frequency mottling",
        paper_texture, 512, {
        "mottle": 0.4, "mottle_cell": 160.0, "fibre": 0.05, "fibre_count": 2000, "blotch": 0.0, "silk": 0.0,
        "grain": 0.05,
    }),
    "paper_blotchy.png": Recipe(
        "a blotchy surface with soft dark and light spots",
        paper_texture, 512, {
        "mottle": 0.15, "mottle_cell": 96.0, "fibre": 0.0, "fibre_count": 0, "blotch": 0.3, "silk": 0.0,
        "grain": 0.06,
    }),
    "paper_silk.png": Recipe(
        "a fine woven (silk-finish) surface",
        paper_texture, 512, {
        "mottle": 0.1, "mottle_cell": 128.0, "fibre": 0.0, "fibre_count": 0, "blotch": 0.0, "silk": 0.12,
        "grain": 0.04,
    }),
}  # fmt: skip


def texture_rng(name: str, seed: int) -> np.random.Generator:
    """The generator for one texture: independent of every other texture's and of the recipe order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def render(name: str, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The texture `name` as a uint8 (H, W) array."""
    recipe = RECIPES[name]
    return recipe.make(texture_rng(name, seed), recipe.size, **recipe.params)


def describe(recipe: Recipe) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in recipe.params.items())
    return f"`{recipe.make.__name__}(rng, size={recipe.size}, {params})`"


def readme(seed: int) -> str:
    rows = "\n".join(f"| `{name}` | {recipe.about} | {describe(recipe)} |" for name, recipe in RECIPES.items())
    return f"""# Bundled scratch and paper textures

Made for Patina by `tools/make_scratch_textures.py`; they are ours and licensed like the rest of the
repository (MIT). No third-party scans are used. Regenerate (same seed: same pixels, and with the same zlib
the same bytes) with:

    python tools/make_scratch_textures.py --out assets/scratch_textures --seed {seed}

Each texture draws from its own generator, `numpy.random.default_rng([{seed}, crc32(file name)])`, and is made
by the function and parameters below (functions in `tools/make_scratch_textures.py`; strokes use
`degrade.ops.strokes`: `draw_stroke`, `wavy_path`, `smooth_profile`, `end_fade`; noise uses
`degrade.ops.damage.fractal_noise`).

Conventions, read by `degrade.textures`:
- the kind comes from the file-name prefix: `scratch_*` (anything else without `paper_` counts as scratch),
  `paper_*`;
- scratch textures are **bright damage on a dark background** (white = scratch; values scale the opacity);
  a faint hazy, grainy background below about 0.1 is part of the scanned look and is mostly removed by the
  `texture_scratches` op's soft threshold;
- paper textures are gray with **0.5 = neutral**, darker and brighter = the surface's grain and mottling;
- all are 8-bit grayscale PNG: scratch textures 1024 x 1024 px, paper textures 512 x 512 px.

| File | Shows | Generator |
|---|---|---|
{rows}
"""


def write(out: Path, seed: int) -> list[Path]:
    """Write every texture and the README into `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RECIPES:
        path = out / name
        Image.fromarray(render(name, seed)).save(path, compress_level=9)
        written.append(path)
    (out / "README.md").write_text(readme(seed), encoding="utf-8")
    return [*written, out / "README.md"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="global seed")
    args = parser.parse_args()
    for path in write(args.out, args.seed):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
