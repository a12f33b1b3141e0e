"""Where clean photographs come from: Pascal VOC, a folder of images, or bundled samples.

`open_source(spec)` lists a source once, up front, into a `Source`: a sorted list of
`SourceItem`s (a stable, filesystem-safe id, an absolute path, and the `ref` recorded in
the manifest) plus the entries it refused while listing. Listing never decodes images;
`load_image(path)` does that, once per sample, and returns the pixels together with the
sha256 of the file bytes, so the manifest checksum describes exactly what was decoded.

Every user-facing problem is a one-line exception that names the file or folder:
`ImageError` for an image that cannot be used, `SourceError` for a source that cannot be
opened. Both subclass `ValueError` and carry no CLI dependency.

Downloading Pascal VOC lives in `degrade.voc_download`; `download_voc` and
`safe_extract` are re-exported here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .voc_download import DownloadError, UnsafeArchiveError, download_voc, safe_extract

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_PHOTOS",
    "VOC_ID_RE",
    "DownloadError",
    "ImageError",
    "Source",
    "SourceError",
    "SourceItem",
    "UnsafeArchiveError",
    "download_voc",
    "load_image",
    "open_source",
    "safe_extract",
]


class ImageError(ValueError):
    """An image that cannot be used; the message is one line and starts with the path.

    For example ``"photos/a.jpg: truncated or corrupt image (image file is truncated)"``.
    `path` and `reason` hold the two halves when the error came from `load_image`.
    """

    def __init__(self, message: str, *, path: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.path = path
        self.reason = reason


class SourceError(ValueError):
    """A source that cannot be opened (missing folder, incomplete VOC tree, no images).

    The message is one line and names the folder or file at fault.
    """


@dataclass(frozen=True)
class SourceItem:
    """One clean photograph of a source.

    `id` is unique within the source, case-insensitively (safe on macOS/Windows
    file systems), uses only ``[A-Za-z0-9._-]``, and is stable: it depends on the
    item's own name, so output file names survive re-listing. `path` is absolute.
    `ref` is what the manifest records: a POSIX path relative to the source root
    (``"JPEGImages/2008_000008.jpg"``, ``"holiday/beach.jpg"``) or, for samples, a
    path inside the package that ships the file (``"skimage/data/astronaut.png"``).
    """

    id: str
    path: Path
    ref: str


@dataclass(frozen=True)
class Source:
    """A listed source: `items` sorted deterministically, plus entries refused while listing.

    `errors` entries are ``{"ref": ..., "error": one-line message}``. `description` is
    JSON-able and identifies the source in ``dataset.json`` (kind, root, count, and
    year/split for VOC or package versions for samples).
    """

    kind: str
    items: list[SourceItem]
    errors: list[dict]
    description: dict


# --------------------------------------------------------------------------- images

#: File extensions a folder source picks up (compared case-insensitively).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# Leading bytes of formats we accept: an unidentifiable file that starts like one of
# these is a damaged image ("truncated or corrupt"), not a non-image.
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"BM",  # BMP
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"GIF87a",
    b"GIF89a",
)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_MAX_DETAIL = 200


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _fail(path: Any, reason: str) -> ImageError:
    p = os.fspath(path)
    reason = _one_line(reason)
    return ImageError(f"{p}: {reason}", path=p, reason=reason)


def _detail(exc: BaseException) -> str:
    text = _one_line(str(exc))
    return text or type(exc).__name__


def _looks_like_image(data: bytes) -> bool:
    if data.startswith(_MAGIC):
        return True
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def load_image(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read an image file once and decode it to 8-bit RGB.

    Returns ``(pixels, sha256)``: a writeable, C-contiguous ``uint8`` array of shape
    ``(H, W, 3)`` in RGB order (values 0-255) and the sha256 hex digest of the file's
    bytes. The EXIF orientation is applied, so the array is the photo as a viewer
    shows it. Conversions to RGB:

    - gray (``L``, ``1``) and palette (``P``) are expanded to three equal channels;
    - any alpha (``RGBA``, ``LA``, ``PA``, palette/RGB transparency) is composited over white;
    - ``CMYK`` and ``YCbCr`` use Pillow's conversion (embedded ICC profiles are ignored);
    - 16-bit gray (``I;16*``, and ``I`` as Pillow reports 16-bit PNG/TIFF) keeps its
      high byte (``value >> 8``, values clipped to 0..65535 first for 32-bit ``I``);
    - float (``F``) is read as 0..1 when its maximum is at most 1, else as 0..255.

    The whole image is decoded here, so a truncated file fails here rather than later.
    Raises `ImageError` (one line, starting with the path) for a missing, unreadable,
    empty, non-image, truncated/corrupt or oversized (decompression bomb) file.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not an image file") from None
    except PermissionError:
        raise _fail(path, "cannot read file (permission denied)") from None
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or _detail(exc)})") from None
    if not data:
        raise _fail(path, "empty file (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()

    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _fail(path, f"image too large, refused as a possible decompression bomb ({_detail(exc)})") from None
    except UnidentifiedImageError:
        if _looks_like_image(data):
            raise _fail(path, "truncated or corrupt image (cannot read the image header)") from None
        raise _fail(path, "not an image, or an unsupported image format") from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types (SyntaxError, struct.error, ...)
        raise _fail(path, f"truncated or corrupt image ({_detail(exc)})") from None

    try:
        with img:
            img.load()
            _apply_exif_orientation(img)
            pixels = _to_rgb8(img)
    except ImageError as exc:
        raise _fail(path, exc.reason or str(exc)) from None
    except Image.DecompressionBombError as exc:
        raise _fail(path, f"image too large, refused as a possible decompression bomb ({_detail(exc)})") from None
    except MemoryError:
        raise
    except Exception as exc:
        raise _fail(path, f"truncated or corrupt image ({_detail(exc)})") from None
    return pixels, digest


def _apply_exif_orientation(img: Image.Image) -> None:
    """Rotate/flip `img` in place as its EXIF orientation says; broken EXIF is ignored."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data" and friends
            ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # an unreadable EXIF block must not cost us the photo
        pass


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if mode == "I" or arr.dtype.kind == "i":
            arr = np.clip(arr, 0, 65535)
        gray = (arr.astype(np.uint16, copy=False) >> 8).astype(np.uint8)
        return _gray_to_rgb(gray)
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return _gray_to_rgb(gray)
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        img = canvas.convert("RGB")
    elif mode != "RGB":
        try:
            img = img.convert("RGB")
        except ValueError:
            raise ImageError(f"unsupported colour mode {mode}", reason=f"unsupported colour mode {mode}") from None
    arr = np.array(img, dtype=np.uint8)  # a writeable copy (np.asarray would be read-only)
    if arr.ndim != 3 or arr.shape[2] != 3:
        reason = f"unexpected pixel layout {arr.shape} after conversion from {mode}"
        raise ImageError(reason, reason=reason)
    return np.ascontiguousarray(arr)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    out = np.empty(gray.shape + (3,), dtype=np.uint8)
    out[...] = gray[..., None]
    return out


# --------------------------------------------------------------------------- sources


def open_source(
    spec: str | os.PathLike,
    *,
    voc_root: str | os.PathLike | None = None,
    year: str = "2012",
    split: str = "train",
) -> Source:
    """List the clean photos of a source.

    `spec` is ``"voc"`` (Pascal VOC under `voc_root`, which may be the ``VOCdevkit``
    folder or its parent; `year` and `split` pick ``VOC{year}/ImageSets/Main/{split}.txt``),
    ``"sample"`` (photographs shipped inside installed packages) or any other string,
    which is a folder path (use ``./voc`` for a folder that happens to be named "voc").
    Raises `SourceError` (a `ValueError`) for a source that cannot be opened or holds no
    usable image. Individual bad entries do not raise: they go to `Source.errors`.
    """
    if isinstance(spec, str) and spec == "voc":
        if voc_root is None:
            raise SourceError("source 'voc' needs the VOC root: the VOCdevkit folder or the folder that contains it")
        return _open_voc(Path(voc_root), str(year), str(split))
    if isinstance(spec, str) and spec == "sample":
        return _open_sample()
    return _open_folder(spec)


def _inside(path: str, root: str) -> bool:
    """True when the (already resolved) `path` is `root` or lies below it."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


# ---- Pascal VOC

#: A Pascal VOC image id: ``2008_000008`` (VOC2008-2012) or ``000005`` (VOC2007).
VOC_ID_RE = re.compile(r"\A(?:[0-9]{4}_[0-9]{6}|[0-9]{6})\Z")
_YEAR_RE = re.compile(r"\A[0-9]{4}\Z")
_SPLIT_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def _find_devkit(root: Path, year: str) -> Path:
    if not root.exists():
        raise SourceError(f"{root}: VOC root not found")
    if not root.is_dir():
        raise SourceError(f"{root}: VOC root is not a folder")
    if (root / f"VOC{year}").is_dir():
        return root
    if (root / "VOCdevkit" / f"VOC{year}").is_dir():
        return root / "VOCdevkit"
    raise SourceError(
        f"{root}: no VOC{year} found (expected {root / 'VOCdevkit' / f'VOC{year}'} "
        f"or {root / f'VOC{year}'}; add --download to fetch it)"
    )


def _available_splits(main_dir: Path) -> list[str]:
    try:
        names = os.listdir(main_dir)
    except OSError:
        return []
    # class-specific lists (aeroplane_train.txt) are not splits
    return sorted(n[:-4] for n in names if n.endswith(".txt") and "_" not in n)


def _open_voc(root: Path, year: str, split: str) -> Source:
    if not _YEAR_RE.match(year):
        raise SourceError(f"invalid VOC year {year!r} (expected e.g. 2012 or 2007)")
    if not _SPLIT_RE.match(split):
        raise SourceError(f"invalid VOC split {split!r} (expected e.g. train, val, trainval, test)")
    devkit = Path(os.path.realpath(_find_devkit(root.expanduser(), year)))
    voc = devkit / f"VOC{year}"
    main_dir = voc / "ImageSets" / "Main"
    split_file = main_dir / f"{split}.txt"
    split_ref = f"ImageSets/Main/{split}.txt"
    if not split_file.is_file():
        known = _available_splits(main_dir)
        hint = f" (available: {', '.join(known)})" if known else ""
        raise SourceError(f"{split_file}: VOC{year} split file not found{hint}")
    jpeg_dir = voc / "JPEGImages"
    if not jpeg_dir.is_dir():
        raise SourceError(f"{jpeg_dir}: VOC{year} image folder not found")
    jpeg_real = os.path.realpath(jpeg_dir)

    try:
        text = split_file.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise SourceError(f"{split_file}: cannot read split file ({exc.strerror or exc})") from None

    # One directory listing instead of a stat per id (VOC2012 train has 5717 ids).
    try:
        entries = {e.name: e.is_symlink() for e in os.scandir(jpeg_real)}
    except OSError as exc:
        raise SourceError(f"{jpeg_dir}: cannot list folder ({exc.strerror or exc})") from None

    items: dict[str, SourceItem] = {}
    first_line: dict[str, int] = {}
    errors: list[dict] = []

    def refuse(ref: str, reason: str) -> None:
        errors.append({"ref": ref, "error": _one_line(f"{ref}: {reason}")})

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line_ref = f"{split_ref}:{lineno}"
        vid = raw.strip()
        if not vid:
            refuse(line_ref, "empty line, no VOC image id")
            continue
        if not VOC_ID_RE.match(vid):
            shown = vid if len(vid) <= 60 else vid[:57] + "..."
            refuse(line_ref, f"invalid VOC image id {shown!r} (expected e.g. 2008_000008 or 000005)")
            continue
        if vid in first_line:
            refuse(line_ref, f"duplicate VOC image id {vid} (first listed on line {first_line[vid]})")
            continue
        first_line[vid] = lineno
        name = f"{vid}.jpg"
        ref = f"JPEGImages/{name}"
        if name not in entries:
            refuse(ref, f"listed in {split_ref} but the image file is missing")
            continue
        path = os.path.join(jpeg_real, name)
        if entries[name]:
            path = os.path.realpath(path)
        if not _inside(path, jpeg_real):
            refuse(ref, "resolves outside JPEGImages (symlink), refused")
            continue
        if not os.path.isfile(path):
            refuse(ref, "not a regular file")
            continue
        items[vid] = SourceItem(id=vid, path=Path(path), ref=ref)

    ordered = [items[k] for k in sorted(items)]
    if not ordered:
        first = f"; first problem: {errors[0]['error']}" if errors else ""
        raise SourceError(f"{split_file}: no usable images listed{first}")
    description = {
        "kind": "voc",
        "root": str(devkit),
        "year": year,
        "split": split,
        "count": len(ordered),
    }
    return Source(kind="voc", items=ordered, errors=errors, description=description)


# ---- folder

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ID_LEN = 150


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()[:8]


def _base_id(rel: str, ext: str) -> str:
    stem = rel[: -len(ext)] if ext else rel
    ident = _UNSAFE_ID_CHARS.sub("_", stem.replace("/", "__"))
    if len(ident) > _MAX_ID_LEN:
        ident = f"{ident[: _MAX_ID_LEN - 9]}-{_short_hash(rel)}"
    return ident


def _assign_ids(rels: list[str]) -> dict[str, str]:
    """Map sorted relative paths to unique ids (unique case-insensitively).

    A path whose sanitised id is shared by no other keeps it. Paths that share one get
    their extension appended (``a.jpg``/``a.png`` -> ``a_jpg``/``a_png``) when that
    separates them, else a short hash of their own relative path; a counter settles the
    (unlikely) remaining clashes. Each id therefore depends on its own path and on the
    paths it collides with, never on unrelated files.
    """
    exts = {rel: os.path.splitext(rel)[1] for rel in rels}
    base = {rel: _base_id(rel, exts[rel]) for rel in rels}
    groups: dict[str, list[str]] = defaultdict(list)
    for rel in rels:
        groups[base[rel].lower()].append(rel)
    ids: dict[str, str] = {}
    used: set[str] = set()
    for members in groups.values():
        if len(members) == 1:
            ids[members[0]] = base[members[0]]
            used.add(base[members[0]].lower())
    for key in sorted(k for k, m in groups.items() if len(m) > 1):
        members = groups[key]
        lowered = [exts[m].lower() for m in members]
        if len(set(lowered)) == len(lowered):
            wanted = {m: f"{base[m]}_{exts[m][1:].lower()}" for m in members}
        else:
            wanted = {m: f"{base[m]}-{_short_hash(m)}" for m in members}
        for m in members:  # already in sorted order
            cand, n = wanted[m], 2
            while cand.lower() in used:
                cand, n = f"{wanted[m]}-{n}", n + 1
            used.add(cand.lower())
            ids[m] = cand
    return ids


def _open_folder(spec: str | os.PathLike) -> Source:
    root = Path(spec).expanduser()
    if not root.exists():
        raise SourceError(f"{spec}: folder not found")
    if not root.is_dir():
        raise SourceError(f"{spec}: not a folder")
    root_real = os.path.realpath(root)

    errors: list[dict] = []

    def refuse(ref: str, reason: str) -> None:
        errors.append({"ref": ref, "error": _one_line(f"{ref}: {reason}")})

    # (relative posix path, real file path, reached through a symlink)
    found: list[tuple[str, str, bool]] = []
    # Each stack entry: real directory path, its path relative to root, the real paths
    # of its ancestors (to stop symlink cycles), and whether a symlink led here.
    stack: list[tuple[str, str, frozenset[str], bool]] = [(root_real, "", frozenset({root_real}), False)]
    while stack:
        dir_real, rel_dir, ancestors, via_link = stack.pop()
        try:
            with os.scandir(dir_real) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            ref = rel_dir or "."
            refuse(ref, f"cannot list folder ({exc.strerror or exc})")
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # hidden files and folders, including macOS "._x.jpg" forks
            rel = f"{rel_dir}/{name}" if rel_dir else name
            ext = os.path.splitext(name)[1].lower()
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                continue
            wanted_file = ext in IMAGE_EXTENSIONS
            real = entry.path
            if is_link:
                real = os.path.realpath(entry.path)
                if not os.path.exists(real):
                    if wanted_file:
                        refuse(rel, "broken symlink, skipped")
                    continue
                if not _inside(real, root_real):
                    if is_dir or wanted_file:
                        refuse(rel, "symlink points outside the source folder, skipped")
                    continue
            if is_dir:
                if real in ancestors:
                    continue  # a symlink back up the tree
                stack.append((real, rel, ancestors | {real}, via_link or is_link))
                continue
            if not wanted_file:
                continue
            try:
                is_file = entry.is_file()
            except OSError:
                is_file = False
            if not is_file:
                refuse(rel, "not a regular file, skipped")
                continue
            found.append((rel, real, via_link or is_link))

    # The same file reached twice (through an inside symlink) is listed once, under its
    # symlink-free path when there is one.
    found.sort(key=lambda t: (t[2], t[0]))
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    for rel, real, _ in found:
        if real in seen:
            continue
        seen.add(real)
        kept.append((rel, real))
    kept.sort(key=lambda t: t[0])

    if not kept:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise SourceError(f"{spec}: no images found (looked for {exts}; hidden files are skipped)")
    ids = _assign_ids([rel for rel, _ in kept])
    items = [SourceItem(id=ids[rel], path=Path(real), ref=rel) for rel, real in kept]
    description = {"kind": "folder", "root": root_real, "count": len(items)}
    return Source(kind="folder", items=items, errors=errors, description=description)


# ---- bundled samples

#: Natural photographs shipped inside packages: (import name, distribution name,
#: folder inside the package, file names). scikit-image's other bundled files are
#: graphics (horse, logo, chessboards, color wheel), synthetic (clock_motion),
#: microscopy/medical (cell, ihc, retina, microaneurysms), astronomy
#: (hubble_deep_field) or a document scan (page), and are left out. Files that
#: scikit-image only fetches over the network (pooch cache) are not used, so the
#: sample set is the same on every machine with the same package versions.
SAMPLE_PHOTOS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "skimage",
        "scikit-image",
        "data",
        (
            "astronaut.png",
            "brick.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "moon.png",
            "motorcycle_left.png",
            "motorcycle_right.png",
            "rocket.jpg",
        ),
    ),
    ("sklearn", "scikit-learn", "datasets/images", ("china.jpg", "flower.jpg")),
    ("matplotlib", "matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg",)),
)


def _package_dir(name: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _dist_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _open_sample() -> Source:
    items: list[SourceItem] = []
    packages: dict[str, str | None] = {}
    parents: list[str] = []
    for pkg, dist, sub, names in SAMPLE_PHOTOS:
        pkg_dir = _package_dir(pkg)
        if pkg_dir is None:
            continue
        folder = pkg_dir / sub
        used = False
        for name in names:
            path = folder / name
            if not path.is_file():
                continue  # not shipped by this version (or fetched over the network)
            items.append(SourceItem(id=Path(name).stem, path=path.absolute(), ref=f"{pkg}/{sub}/{name}"))
            used = True
        if used:
            packages[dist] = _dist_version(dist)
            parents.append(str(pkg_dir.absolute().parent))
    if not items:
        raise SourceError("sample: no sample photos found (they ship with scikit-image; is it installed?)")
    items.sort(key=lambda it: it.id)
    description = {
        "kind": "sample",
        "root": os.path.commonpath(parents),
        "count": len(items),
        "packages": packages,
    }
    return Source(kind="sample", items=items, errors=[], description=description)
