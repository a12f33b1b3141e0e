"""Scratch and paper textures: find and load texture sets, place a texture on an image, blend layers.

A *texture set* is either the bundled folder (`assets/scratch_textures/`, installed as the package data
`degrade.assets`, made by `tools/make_scratch_textures.py`) or a user folder given as `textures = "DIR"` in a
preset or `degrade-gen --textures DIR`. A user folder is searched recursively (hidden files and folders are
skipped) for PNG, JPEG and TIFF images; a texture's name is its path relative to the folder, in POSIX form.

Conventions:
- the kind comes from the file name's prefix (case-insensitive): `paper_*` is a paper texture; `scratch_*`
  and every other name is a scratch texture;
- scratch textures are **bright damage on a dark background**: the value scales the damage's opacity.
  Nothing is inverted automatically: invert a dark-on-light scan yourself before using it;
- paper textures are gray with **0.5 = neutral**; darker and brighter values are the surface's grain;
- images load as float32 grayscale in [0, 1] (8- or 16-bit; colour converts to luma; an alpha channel
  composites over black, so transparent scratch layers work).

Loads are cached per process, keyed on the resolved path, modification time and size, so an edited file is
read again. Every problem is a one-line `TextureError` naming the folder or file.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from degrade.ops.damage import smooth_noise

BUNDLED = "bundled"
"""The `set` recorded for the bundled textures (a user set records its resolved folder path)."""

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
KINDS = ("scratch", "paper")
TEXTURE_OPS: dict[str, str] = {"texture_scratches": "scratch", "paper_texture": "paper"}
"""Ops that read a texture set (config key `textures`), and the kind of texture each uses."""

BLEND_MODES = ("screen", "lighten", "add", "multiply", "overlay", "soft_light")


class TextureError(ValueError):
    """A texture folder or file that cannot be used; the message names it."""


def kind_of(name: str) -> str:
    """ "paper" for a file named `paper_*`, else "scratch"."""
    return "paper" if Path(name).name.lower().startswith("paper_") else "scratch"


# --- texture sets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextureSet:
    """The textures of one folder: `source` is "bundled" or the resolved folder path, as params record it."""

    source: str
    folder: Path
    names: Mapping[str, tuple[str, ...]]
    """Kind -> sorted texture names (paths relative to `folder`, POSIX form)."""

    def of_kind(self, kind: str) -> tuple[str, ...]:
        """The names of this set's `kind` textures, or a TextureError if it has none."""
        names = self.names.get(kind, ())
        if not names:
            raise TextureError(f"{self.folder}: no {kind} textures (image files named {kind}_*.png, .jpg or .tif)")
        return names

    def load(self, name: str) -> Texture:
        return load_texture(self.folder / name, name)


@lru_cache(maxsize=1)
def bundled_folder() -> Path:
    """The folder of the bundled textures (package data of `degrade.assets`)."""
    try:
        folder = Path(str(resources.files("degrade.assets") / "scratch_textures"))
    except ModuleNotFoundError:
        raise TextureError("bundled textures not installed (package degrade.assets is missing)") from None
    if not folder.is_dir():
        raise TextureError(f"{folder}: bundled textures not found (a broken install?)")
    return folder


def set_folder(source: str | Path) -> Path:
    """The folder of a set as named in a config or params: "" or "bundled" -> the bundled folder."""
    if str(source) in ("", BUNDLED):
        return bundled_folder()
    return Path(source).expanduser().resolve()


def texture_set(source: str | Path = "") -> TextureSet:
    """The texture set named by a config's `textures` value: "" (or "bundled") or a folder path."""
    folder = set_folder(source)
    bundled = str(source) in ("", BUNDLED)
    try:
        stat = folder.stat()
    except FileNotFoundError:
        raise TextureError(f"{folder}: texture folder not found") from None
    except OSError as exc:
        raise TextureError(f"{folder}: cannot read texture folder ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise TextureError(f"{folder}: not a folder (textures = a folder of PNG, JPEG or TIFF images)")
    names = _scan(str(folder), stat.st_mtime_ns)
    if not any(names.values()):
        raise TextureError(f"{folder}: no texture images (PNG, JPEG or TIFF) in this folder or below")
    return TextureSet(BUNDLED if bundled else str(folder), folder, names)


@lru_cache(maxsize=64)
def _scan(folder: str, mtime_ns: int) -> dict[str, tuple[str, ...]]:
    """Texture names by kind in `folder`, recursively, skipping hidden entries (`mtime_ns` keys the cache)."""
    root = Path(folder)
    found: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.suffix.lower() in SUFFIXES and not any(p.startswith(".") for p in relative.parts) and path.is_file():
            found[kind_of(path.name)].append(relative.as_posix())
    return {kind: tuple(sorted(names)) for kind, names in found.items()}


def check_set(tset: TextureSet) -> None:
    """Decode every image of a set (uncached), so a corrupt file is reported before any work starts."""
    for kind in KINDS:
        for name in tset.names[kind]:
            _read(tset.folder / name)


# --- textures --------------------------------------------------------------------------------------


LEVEL_SCALE = 65535.0
"""Texture levels are stored as uint16 (value x LEVEL_SCALE): a quarter of float32's memory per worker at
16-bit precision, and OpenCV warps uint16 as fast as float32."""


@dataclass(frozen=True, eq=False)
class Texture:
    """A loaded texture: a pyramid of uint16 (H, W) levels (values x `LEVEL_SCALE`; read-only, shared by the
    cache), each 2x smaller than the last, for drawing it small without aliasing, and the SHA-256 of the
    decoded float32 pixels."""

    name: str
    path: Path
    levels: tuple[np.ndarray, ...]
    sha256: str

    @property
    def pixels(self) -> np.ndarray:
        """The full-size texture as float32 in [0, 1] (a fresh array)."""
        return self.levels[0].astype(np.float32) * np.float32(1.0 / LEVEL_SCALE)


def load_texture(path: Path, name: str | None = None) -> Texture:
    """The texture at `path` (cached); `name` is how params refer to it (default: the file name)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise TextureError(f"{path}: texture file not found") from None
    except OSError as exc:
        raise TextureError(f"{path}: cannot read texture ({exc.strerror or exc})") from None
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size, name or path.name)


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int, size: int, name: str) -> Texture:
    pixels = _read(Path(path))
    levels = [pixels]
    while min(levels[-1].shape) >= 32:
        levels.append(cv2.pyrDown(levels[-1], borderType=cv2.BORDER_REFLECT_101))
    stored = tuple(np.rint(level * np.float32(LEVEL_SCALE)).astype(np.uint16) for level in levels)
    for level in stored:
        level.setflags(write=False)
    return Texture(name, Path(path), stored, pixel_sha256(pixels))


def _read(path: Path) -> np.ndarray:
    """Decode an image file to float32 grayscale in [0, 1]; a TextureError names an unreadable file."""
    try:
        with Image.open(path) as img:
            img.load()
            return _gray(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise TextureError(f"{path}: cannot read texture image ({exc})") from None


def _gray(img: Image.Image) -> np.ndarray:
    """Float32 gray in [0, 1] from any PIL mode: 16-bit and float kept at full precision, alpha over black."""
    if img.mode.startswith("I;16") or img.mode == "I":
        return np.clip(np.asarray(img, dtype=np.float32) / 65535.0, 0.0, 1.0)
    if img.mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        gray = np.asarray(rgba.convert("L"), dtype=np.float32) * np.asarray(rgba.getchannel("A"), dtype=np.float32)
        return gray / np.float32(255.0 * 255.0)
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)


def pixel_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of decoded pixels (shape + float32 values): what a replay needs to be identical, whatever the
    file's encoding."""
    digest = hashlib.sha256(f"{pixels.shape[0]}x{pixels.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(pixels, dtype="<f4").tobytes())
    return digest.hexdigest()


def get_texture(source: str, name: str, sha256: str | None = None) -> Texture:
    """The texture `name` of the set `source` ("bundled" or a folder); with `sha256`, check it is the very
    texture a record was made with."""
    texture = load_texture(set_folder(source) / name, name)
    if sha256 is not None and texture.sha256 != sha256:
        raise TextureError(
            f"{texture.path}: texture differs from the one this record was made with "
            f"(pixel sha256 {texture.sha256[:12]}..., recorded {sha256[:12]}...)"
        )
    return texture


# --- geometry ------------------------------------------------------------------------------------------


def texture_matrix(
    shape: tuple[int, int],
    texture_shape: tuple[int, int],
    centre: Sequence[float],
    angle: float,
    scale: float,
    flip: bool,
) -> np.ndarray:
    """2x3 affine map from output pixel (x, y) to texture pixel coordinates: the output's centre lands on
    `centre` (fractions of the texture's width and height), the texture turned clockwise (as displayed) by
    `angle` degrees, `scale` output px per texture px, mirrored left-right when `flip`."""
    h, w = shape
    th, tw = texture_shape
    a = math.radians(angle)
    cos, sin = math.cos(a) / scale, math.sin(a) / scale
    linear = np.array([[cos, sin], [-sin, cos]], dtype=np.float64)
    if flip:
        linear[0] *= -1.0
    origin = np.array([centre[0] * (tw - 1), centre[1] * (th - 1)])
    offset = origin - linear @ np.array([(w - 1) / 2, (h - 1) / 2])
    return np.hstack([linear, offset[:, None]])


WARP_STEP = 8
"""The elastic warp is drawn on a grid this many px apart and interpolated: it is smooth at that scale anyway."""


def coarse_displacement(shape: tuple[int, int], amplitude: float, cell: float, seed: int) -> np.ndarray:
    """An elastic warp on a grid `WARP_STEP` px apart, to be enlarged to `shape` (H, W) with bilinear
    interpolation: float32 (2, H', W') smooth random (dx, dy) in px, about `amplitude` px standard deviation,
    features about `cell` px wide, regenerated from `seed`."""
    h, w = shape
    coarse = (max(2, -(-h // WARP_STEP) + 1), max(2, -(-w // WARP_STEP) + 1))
    rng = np.random.default_rng(seed)
    cell = max(cell / WARP_STEP, 1.0)
    return np.stack([smooth_noise(rng, coarse, cell) for _ in range(2)]) * np.float32(amplitude)


def place(
    texture: Texture,
    shape: tuple[int, int],
    *,
    centre: Sequence[float],
    angle: float,
    scale: float,
    flip: bool = False,
    warp: float = 0.0,
    warp_cell: float = 64.0,
    seed: int = 0,
    table: np.ndarray | None = None,
) -> np.ndarray:
    """Crop, rotate and scale `texture` into a float32 (H, W) field (see `texture_matrix`), mirrored at the
    texture's borders, and elastically warped by `warp` px (features `warp_cell` px, from `seed`).

    Drawn small, the texture is read from the pyramid level closest to 1:1 (then bilinear), which keeps thin
    scratches from aliasing into broken dots; warp and placement are one resampling, not two.
    """
    h, w = shape
    level = min(max(0, round(math.log2(1.0 / scale))), len(texture.levels) - 1)
    src = texture.levels[level]
    matrix = texture_matrix(shape, texture.levels[0].shape, centre, angle, scale, flip)
    # Level-0 coordinates -> level coordinates: pixel centres (x + 0.5) / 2^level - 0.5.
    k = 0.5**level
    matrix = matrix * k
    matrix[:, 2] += 0.5 * k - 0.5
    if warp <= 0:
        placed = cv2.warpAffine(
            src, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101
        )
        return _values(placed, table)
    # The texture is read at M (p + d(p)) = M p + L d(p) (L: M's linear part): a plane plus smooth offsets,
    # computed on the coarse grid, enlarged, then the plane added in place (image-sized temporaries are costly).
    d = coarse_displacement(shape, warp, warp_cell, seed)
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    maps = []
    for row in matrix.astype(np.float32):
        offsets = cv2.resize(row[0] * d[0] + row[1] * d[1], (w, h), interpolation=cv2.INTER_LINEAR)
        offsets += row[0] * xs[None, :]
        offsets += (row[1] * ys + row[2])[:, None]
        maps.append(offsets)
    return _values(cv2.remap(src, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101), table)


def _values(placed: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """Stored uint16 texture values as float32: scaled to [0, 1], or looked up in `table` (65,536 entries,
    one gather pass, for a caller that would otherwise remap the values with several array operations)."""
    if table is None:
        return placed.astype(np.float32) * np.float32(1.0 / LEVEL_SCALE)
    return np.take(table, placed)


# --- blending ----------------------------------------------------------------------------------------


def blend_layer(img: np.ndarray, layer: np.ndarray | Sequence[float], mode: str) -> np.ndarray:
    """`layer` composited over `img` at full opacity with a blend `mode` (the caller mixes the result in
    by opacity). `img` float32 (H, W, 3) in [0, 1]; `layer` an RGB colour or an array broadcasting to it.

    screen 1-(1-a)(1-b); lighten max(a, b); add min(a+b, 1); multiply ab; overlay 2ab where a < 0.5, else
    1-2(1-a)(1-b); soft_light (1-2b)a^2 + 2ab (the "pegtop" form, continuous; neutral at b = 0.5).
    Each is rewritten to run in place on one or two buffers: image-sized temporaries dominate the cost.
    """
    a, b = _flat_operands(img, layer)
    if mode == "screen":  # a (1 - b) + b
        out = a * (1.0 - b)
        out += b
    elif mode == "lighten":
        out = np.maximum(a, b)
    elif mode == "add":
        out = a + b
    elif mode == "multiply":
        out = a * b
    elif mode == "overlay":  # both branches in one: a + (2b - 1) (min(2a - 1, 0) - a + 1)
        bias = 2.0 * b - 1.0
        out = a * 2.0
        out -= 1.0
        np.minimum(out, 0.0, out=out)
        out -= a
        out += 1.0
        out *= bias
        out += a
    elif mode == "soft_light":  # a ((1 - 2b) a + 2b)
        out = a * (1.0 - 2.0 * b)
        out += 2.0 * b
        out *= a
    else:
        raise ValueError(f"unknown blend mode {mode!r} (known: {', '.join(BLEND_MODES)})")
    return np.clip(out, 0.0, 1.0, out=out).reshape(img.shape)


def _flat_operands(img: np.ndarray, layer: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """`img` as (H, W*3) and `layer` as a matching (W*3,) row or (H, W*3) array: numpy is several times faster
    on long rows than when broadcasting over a last axis of 3."""
    h, w, c = img.shape
    b = np.asarray(layer, dtype=np.float32)
    if b.ndim <= 1:
        b = np.tile(np.broadcast_to(b, (c,)), w)
    else:
        if b.ndim == 2 or b.shape[2] == 1:
            b = cv2.merge([b.reshape(h, w)] * c)
        b = b.reshape(h, w * c)
    return img.reshape(h, w * c), b


# --- presets ---------------------------------------------------------------------------------------------


def texture_entries(preset: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every texture-op entry of a resolved preset (one_of choices included): (where, op name, its config)."""
    stages = {"target": preset["target"], **{f"stages.{name}": stage for name, stage in preset["stages"].items()}}
    for stage_name, stage in stages.items():
        for label, entry in stage["ops"].items():
            choices = entry.get("one_of", {label: entry})
            for choice_name, choice in choices.items():
                if choice["op"] in TEXTURE_OPS:
                    where = f"{stage_name}.ops.{label}" + (f".one_of.{choice_name}" if "one_of" in entry else "")
                    yield where, choice["op"], choice["config"]


def use_textures(preset: Mapping[str, Any], folder: str | Path) -> dict[str, Any]:
    """A deep copy of a resolved preset whose texture ops read `folder` (its resolved path) instead.

    Every image in `folder` is decoded first, so a bad folder or file fails now, naming it. An op whose
    kind `folder` lacks (e.g. paper_texture, given only scratch scans) keeps its set; a TextureError if no
    op of the preset can use the folder at all.
    """
    tset = texture_set(folder)
    check_set(tset)
    out = copy.deepcopy(dict(preset))
    ops = []
    for _, op, config in texture_entries(out):
        ops.append(op)
        if tset.names[TEXTURE_OPS[op]]:
            config["textures"] = tset.source
    if not ops:
        raise TextureError(f"{tset.folder}: the preset has no texture ops ({', '.join(TEXTURE_OPS)}) to use it")
    if all(config["textures"] != tset.source for _, _, config in texture_entries(out)):
        kinds = sorted({TEXTURE_OPS[op] for op in ops})
        raise TextureError(f"{tset.folder}: no {' or '.join(kinds)} textures, which this preset's texture ops use")
    return out
