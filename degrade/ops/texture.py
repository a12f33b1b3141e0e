"""Texture-based damage, as in the paper: scanned-looking scratch textures blended onto the photo.

Wan et al. (CVPR 2020) blended collected scratch and paper textures onto photos "with layer addition,
lighten-only and screen modes at random opacity", after random crop, rotation and scale, with masks from the
textures. `texture_scratches` does that with our generated textures (or a user folder, `textures = "DIR"`),
adds an elastic warp and dark (multiply) and overlay scratches, and masks where the scratch layer's opacity
reaches `MASK_THRESHOLD`, as every structured op does. `paper_texture` lays a paper surface texture (grain,
mottling) over the whole print at low opacity: unstructured, no mask.

Sizes scale with the image's short side relative to 512 px: `scale` is output px per texture px at 512 px.
The params record the texture's name, its set ("bundled" or a folder) and the SHA-256 of its pixels, so a
replay with a different texture is an error rather than a silently different sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from degrade import textures
from degrade.ops.base import Config, Op, Params, new_seed, uniform
from degrade.ops.damage import blend, image_scale

HAZE = (0.06, 0.2)
"""Soft threshold on scratch-texture values: below 0.06 (a scan's background haze) nothing, above 0.2 all."""

WARP_CELL = (48.0, 160.0)
"""Range of the elastic warp's feature size, px at a 512-px short side."""

BRIGHT_MODES = ("screen", "lighten", "add")


def _weighted(rng: np.random.Generator, weights: Mapping[str, float], allowed: tuple[str, ...]) -> str:
    """One key of `weights` drawn in proportion to its weight (one uniform draw)."""
    for mode in weights:
        if mode not in allowed:
            raise ValueError(f"unknown blend mode {mode!r} (known: {', '.join(allowed)})")
    names = [mode for mode, weight in weights.items() if weight > 0]
    if not names:
        raise ValueError("modes: at least one blend mode needs a positive weight")
    cumulative = np.cumsum([float(weights[mode]) for mode in names])
    return names[min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(names) - 1)]


def _placement(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    """Where the texture lands: a random point of it at the image centre, turned, scaled, maybe mirrored."""
    unit = image_scale(shape)
    return {
        "centre": [uniform(rng, [0.0, 1.0]), uniform(rng, [0.0, 1.0])],
        "angle": uniform(rng, cfg["rotation"]),
        "scale": uniform(rng, cfg["scale"]) * unit,
        "flip": bool(rng.random() < 0.5),
    }


def _chosen(rng: np.random.Generator, cfg: Config, kind: str) -> Params:
    """A texture of `kind` from the configured set, recorded by set, name and pixel hash."""
    tset = textures.texture_set(cfg["textures"])
    names = tset.of_kind(kind)
    name = names[int(rng.integers(len(names)))]
    return {"set": tset.source, "texture": name, "sha256": tset.load(name).sha256}


def _recorded(params: Params) -> textures.Texture:
    """The texture a record names, checked against its pixel hash."""
    return textures.get_texture(params["set"], params["texture"], params["sha256"])


def _field(
    texture: textures.Texture, params: Params, shape: tuple[int, int], table: np.ndarray | None = None
) -> np.ndarray:
    """`texture` placed (and warped) as `params` say into a float32 (H, W) field."""
    return textures.place(
        texture, shape, centre=params["centre"], angle=params["angle"], scale=params["scale"], flip=params["flip"],
        warp=params.get("warp", 0.0), warp_cell=params.get("warp_cell", 64.0), seed=params.get("seed", 0),
        table=table,
    )  # fmt: skip


# --- texture_scratches -------------------------------------------------------------------------------


def _scratch_colour(rng: np.random.Generator, mode: str) -> list[float]:
    """The scratch layer's colour: bright paper-white, faintly cream (screen, lighten, add); dark dirt-brown
    (multiply: where the texture is bright the print darkens, as a scratch on the negative prints); very
    bright or very dark (overlay, which at mid-grey gives the layer colour itself)."""
    bright = mode in BRIGHT_MODES or (mode == "overlay" and rng.random() < 0.6)
    if bright:
        v, cream = uniform(rng, [0.85, 1.0]), uniform(rng, [0.0, 1.0])
        rgb = [v, v * (1.0 - 0.02 * cream), v * (1.0 - 0.05 * cream)]
    else:
        v = uniform(rng, [0.03, 0.12] if mode == "overlay" else [0.05, 0.3])
        rgb = [v, v * 0.92, v * 0.8]
    return [round(c, 4) for c in rgb]


def sample_texture_scratches(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    unit = image_scale(shape)
    params = _chosen(rng, cfg, "scratch")
    params.update(_placement(rng, shape, cfg))
    mode = _weighted(rng, cfg["modes"], ("screen", "lighten", "add", "multiply", "overlay"))
    params.update({
        "warp": uniform(rng, cfg["warp"]) * unit,
        "warp_cell": uniform(rng, WARP_CELL) * unit,
        "seed": new_seed(rng),
        "mode": mode,
        "opacity": uniform(rng, cfg["opacity"]),
        "color": _scratch_colour(rng, mode),
    })  # fmt: skip
    return params


def dehaze(values: np.ndarray) -> np.ndarray:
    """Scratch-texture values with the scan's background haze removed: value x smoothstep between the
    `HAZE` values (float32, same shape, in [0, 1])."""
    lo, hi = HAZE
    t = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    return (values * t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)


@lru_cache(maxsize=1)
def _dehaze_table() -> np.ndarray:
    """`dehaze` of every stored texture value (uint16 / `textures.LEVEL_SCALE`), for one look-up per pixel."""
    return dehaze(np.arange(65536, dtype=np.float32) / np.float32(textures.LEVEL_SCALE))


def apply_texture_scratches(img: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """The scratch texture as a layer of colour `color`, blended with `mode` and mixed in by
    opacity x dehazed texture value; masked where that reaches `MASK_THRESHOLD`."""
    alpha = _field(_recorded(params), params, img.shape[:2], _dehaze_table())
    alpha *= np.float32(params["opacity"])
    target = textures.blend_layer(img, params["color"], params["mode"])
    return blend(img, alpha, target)


# --- paper_texture -----------------------------------------------------------------------------------


def sample_paper_texture(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    params = _chosen(rng, cfg, "paper")
    params.update(_placement(rng, shape, cfg))
    params["mode"] = _weighted(rng, cfg["modes"], ("multiply", "overlay", "soft_light"))
    params["opacity"] = uniform(rng, cfg["opacity"])
    return params


def apply_paper_texture(img: np.ndarray, params: Params) -> np.ndarray:
    """The paper texture (0.5 = neutral) over the whole image by `mode` at `opacity`. Multiply uses
    min(texture + 0.5, 1), so only the texture's darker half darkens and neutral stays neutral."""
    paper = _field(_recorded(params), params, img.shape[:2])[..., None]
    if params["mode"] == "multiply":
        paper = np.minimum(paper + np.float32(0.5), np.float32(1.0))
    layered = textures.blend_layer(img, paper, params["mode"])
    out = img + np.float32(params["opacity"]) * (layered - img)
    return np.clip(out, 0.0, 1.0, out=out)


OPS: list[Op] = [
    Op(
        "texture_scratches",
        sample_texture_scratches,
        apply_texture_scratches,
        defaults={
            "textures": "",
            "opacity": [0.65, 0.9],
            "scale": [0.5, 1.0],
            "rotation": [-180.0, 180.0],
            "warp": [0.0, 5.0],
            "modes": {"screen": 0.3, "lighten": 0.25, "add": 0.2, "multiply": 0.15, "overlay": 0.1},
        },
        label=1,
        doc=(
            'A scanned-looking scratch texture blended on (the paper\'s method): `textures` "" = bundled or a '
            "folder, `opacity` range, `scale` range (output px per texture px at a 512-px short side), `rotation` "
            "range (degrees), `warp` range (elastic warp, px at 512), `modes` blend-mode weights (screen, lighten, "
            "add, multiply, overlay)."
        ),
        severities={
            "light": {"opacity": [0.4, 0.6]},
            "moderate": {"opacity": [0.65, 0.9]},
            "heavy": {"opacity": [0.9, 1.0]},
        },
    ),
    Op(
        "paper_texture",
        sample_paper_texture,
        apply_paper_texture,
        defaults={
            "textures": "",
            "opacity": [0.1, 0.35],
            "scale": [0.6, 1.2],
            "rotation": [-180.0, 180.0],
            "modes": {"overlay": 0.4, "soft_light": 0.4, "multiply": 0.2},
        },
        doc=(
            'Paper surface grain and mottling over the whole print: `textures` "" = bundled or a folder, '
            "`opacity` range, `scale` range (output px per texture px at a 512-px short side), `rotation` range "
            "(degrees), `modes` blend-mode weights (multiply, overlay, soft_light)."
        ),
    ),
]
