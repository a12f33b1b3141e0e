"""Frozen benchmark suites: a TOML definition, rendered by the engine into files with a checksum each.

A suite is cited by name and checksum: two folders with the same checksum hold the same bytes, so every method
scored on them saw exactly the same inputs. A published definition is never edited; a change is a new name
(``old-photo-v2``).

Definition (``degrade/bench/suites/<name>.toml``, or any TOML file)::

    name = "old-photo-v1"
    description = "..."
    seed = 1                    # the image selection order and every item's random stream derive from it

    [images]
    count = 100                 # images taken from the source, in a stable order: stable_hash("<seed>/<id>")
    size = 256                  # each is resized so its shorter side is `size` (degrade.dataset.prepare), then
                                # centre-cropped to a `size` x `size` square: no random crop, every item alike
    min_side = 256              # optional (default `size`): smaller photos are passed over (listed as too_small)
                                # rather than enlarged

    [tracks.scratches]          # track name: lower case letters, digits, '-' and '_' (a folder name)
    description = "..."
    [tracks.scratches.levels.1] # levels 1..n, mild to severe; a level is a preset table in the schema of
    ...                         # degrade/presets/*.toml: `base = "old-photo"` takes a built-in preset (the rest
                                # of the table overrides it), or the table is a whole preset inline

Every level of every track renders the same selected photos. Item (track, level, photo) draws from its own
stream, ``degrade.seeding.sample_rng(seed, "<track>/<level>/<photo id>", 0)``, so tracks and levels never share
draws and no item depends on the worker count or order. A photo that cannot be decoded is reported under
"errors" and the next one in the order takes its place; a render that fails is reported and left out.

On disk (see `make_suite`): ``<track>/<level>/<id>/{clean,degraded,mask}.png`` and ``record.json`` (the plan:
every op with its params, replayable with `degrade.replay`, plus the input scores), and ``suite.json`` written
last. ``files`` maps every file but suite.json to its sha256; ``checksum`` is the sha256 of the lines
``"<sha256>  <path>\\n"`` sorted by path (the output of ``sha256sum`` over those files, in that order). The
bytes, hence the checksum, depend on the photos, the engine version and the versions of the libraries that render
and encode (NumPy, OpenCV, Pillow; recorded under "engine", so a checksum that does not reproduce says why), never
on the machine's paths or the worker count.

A PNG encoder build can change the bytes of identical pixels, so suite.json also holds ``pixels``, the
`pixel_sha256` of every image (its decoded values, not its bytes), and ``pixel_checksum``, the same sum of sorted
lines over them: two suites with equal pixel checksums gave every method exactly the same inputs, even when their
files differ. `pixel_checksum` recomputes it from the images of any suite folder, including ones made before it was
recorded.

A make is resumable: while it runs, ``suite.partial.json`` holds what it is making (definition, engine, source);
a rerun into the same folder keeps every item whose record.json and files still match, and renders the rest. A
folder that holds another suite, or anything but a suite, is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import cv2
import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

from degrade.allocator import keep_freed_memory
from degrade.bench.metrics import image_scores
from degrade.dataset import prepare, sample_id
from degrade.pipeline import Degrader, is_gray
from degrade.presets import PresetError, resolve, with_base
from degrade.seeding import sample_rng, spawn_key, stable_hash
from degrade.sources import ImageError, Source, SourceItem, load_image
from degrade.versions import environment
from degrade.writer import atomic_write, encode_png

FORMAT = "patina-suite/1"
MANIFEST = "suite.json"
PARTIAL = "suite.partial.json"  # the identity of an unfinished make; removed once suite.json is written
IMAGES = ("clean", "mask", "degraded")  # written in this order, then record.json, which marks the item finished
DEFINITION_KEYS = {"name", "description", "seed", "images", "tracks"}
IMAGE_KEYS = {"count", "size", "min_side"}
TRACK_KEYS = {"description", "levels"}
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_TRACK_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")

Level = tuple[str, int, dict[str, Any]]  # track, level number, resolved preset
Finished = tuple[dict[str, Any], dict[str, str], dict[str, str]]  # record, file sha256s, image pixel sha256s


class SuiteError(ValueError):
    """A suite definition or folder that cannot be used; the message is one line and names the file."""


@dataclass(frozen=True)
class SuiteItem:
    """One rendered item; paths are absolute, `input` holds the degraded image's scores against the clean one."""

    key: str
    track: str
    level: int
    id: str
    clean: Path
    degraded: Path
    mask: Path
    record: Path
    input: dict[str, float]


@dataclass
class Suite:
    """A suite folder as its suite.json describes it."""

    root: Path
    name: str
    checksum: str
    items: list[SuiteItem]
    manifest: dict[str, Any]


# --------------------------------------------------------------------------- definitions


def builtin_suites() -> list[str]:
    """Names of the suite definitions shipped in the package."""
    folder = resources.files("degrade.bench.suites")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_definition(name_or_toml: str | Path) -> dict[str, Any]:
    """A validated suite definition (the TOML as a dict) from a built-in name or a TOML file."""
    definition, _ = _load(name_or_toml)
    return definition


def _load(name_or_toml: str | Path) -> tuple[dict[str, Any], list[Level]]:
    path = Path(name_or_toml)
    if path.suffix == ".toml" or path.exists():
        origin = str(path)
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise SuiteError(f"{path}: cannot read suite definition ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SuiteError(f"{path}: not valid TOML ({exc})") from None
    else:
        name = str(name_or_toml)
        if name not in builtin_suites():
            known = ", ".join(builtin_suites())
            raise SuiteError(f"unknown suite {name!r} (built in: {known}; or give a .toml file)")
        origin = f"{name}.toml"
        raw = tomllib.loads(resources.files("degrade.bench.suites").joinpath(origin).read_text("utf-8"))
    return raw, resolve_levels(raw, origin)


def _int(value: Any, where: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SuiteError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise SuiteError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def resolve_levels(raw: dict[str, Any], origin: str = "suite definition") -> list[Level]:
    """Validate a definition; return (track, level, resolved preset) for every level, in definition order.

    `origin` names the definition in error messages.
    """
    _unknown(raw, DEFINITION_KEYS, origin)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SuiteError(f"{origin}: name must be letters, digits, '.', '_' or '-', got {name!r}")
    _int(raw.get("seed"), f"{origin}: seed", 0)
    images = raw.get("images")
    if not isinstance(images, dict):
        raise SuiteError(f"{origin}: [images] table missing (count, size, min_side)")
    _unknown(images, IMAGE_KEYS, f"{origin}: images")
    _int(images.get("count"), f"{origin}: images.count", 1)
    size = _int(images.get("size"), f"{origin}: images.size", 16)
    _int(images.get("min_side", size), f"{origin}: images.min_side", 1)
    try:
        json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{origin}: only plain values (no dates, no nan) can go into suite.json ({exc})") from None
    tracks = raw.get("tracks")
    if not isinstance(tracks, dict) or not tracks:
        raise SuiteError(f"{origin}: no [tracks.<name>] defined")
    levels: list[Level] = []
    for track, table in tracks.items():
        where = f"{origin}: tracks.{track}"
        if not _TRACK_RE.match(track):
            raise SuiteError(f"{where}: a track name is lower case letters, digits, '-' or '_'")
        if not isinstance(table, dict) or not isinstance(table.get("levels"), dict) or not table["levels"]:
            raise SuiteError(f"{where}: expected a table with [tracks.{track}.levels.1] ...")
        _unknown(table, TRACK_KEYS, where)
        numbers = list(table["levels"])
        if numbers != [str(n) for n in range(1, len(numbers) + 1)]:
            raise SuiteError(f"{where}: levels must be numbered 1, 2, ... in order, got {', '.join(numbers)}")
        for number in numbers:
            preset = _level_preset(table["levels"][number], f"{where}.levels.{number}", f"{name}/{track}/{number}")
            levels.append((track, int(number), preset))
    return levels


def _level_preset(table: Any, where: str, default_name: str) -> dict[str, Any]:
    """A level's resolved preset: `base` extends a built-in preset exactly as a preset file's `base` does."""
    if not isinstance(table, dict):
        raise SuiteError(f"{where}: expected a preset table, got {table!r}")
    try:
        table = with_base(table, where)
        table.setdefault("name", default_name)
        return resolve(table, default_name)
    except PresetError as exc:
        raise SuiteError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- making a suite


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    """A file's bytes, or None when it is missing or not a file (suite files are images and small records)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def pixel_sha256(image: np.ndarray) -> str:
    """The sha256 of an image's shape, dtype and values (RGB or single channel): what a method sees, not how
    the PNG encoder wrote it."""
    header = f"{'x'.join(map(str, image.shape))} {image.dtype}\n".encode("ascii")
    return _sha256(header + np.ascontiguousarray(image).tobytes())


def _png_pixel_sha256(data: bytes) -> str | None:
    """`pixel_sha256` of PNG bytes as `encode_png` wrote them (RGB, or one channel); None when they do not decode."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    return pixel_sha256(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image)


def suite_checksum(files: Mapping[str, str]) -> str:
    """The suite's checksum: sha256 of the lines '<sha256>  <path>\\n' sorted by path."""
    return _sha256("".join(f"{files[rel]}  {rel}\n" for rel in sorted(files)).encode("utf-8"))


def _select(source: Source, seed: int, images: Mapping[str, Any]) -> tuple[list[SourceItem], list[dict], list[dict]]:
    """The first `count` usable photos in the order of stable_hash('<seed>/<id>'), an order that does not depend
    on how the source is listed or on what else it holds. Returns (selected, errors, too_small)."""
    count, size = images["count"], images["size"]
    min_side = images.get("min_side", size)
    order = sorted(source.items, key=lambda item: (stable_hash(f"{seed}/{item.id}"), item.id))
    selected: list[SourceItem] = []
    errors: list[dict] = []
    too_small: list[dict] = []
    for item in order:
        if len(selected) == count:
            break
        try:
            pixels, _ = load_image(item.path)
        except ImageError as exc:
            errors.append({"id": item.id, "ref": item.ref, "error": str(exc)})
            continue
        h, w = pixels.shape[:2]
        if min(h, w) < min_side:
            too_small.append({"id": item.id, "ref": item.ref, "size": [w, h]})
            continue
        selected.append(item)
    return selected, errors, too_small


def _square(image: np.ndarray, size: int, ref: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Shorter side to `size` as degrade-gen resizes, then the centre `size` x `size` square."""
    image, info = prepare(image, np.random.default_rng(0), size, None, ref)  # no crop: the rng is not drawn
    h, w = image.shape[:2]
    x, y = (w - size) // 2, (h - size) // 2
    info["crop"] = [x, y, size, size]
    return np.ascontiguousarray(image[y : y + size, x : x + size]), info


def _render_item(
    out: Path, item: SourceItem, source: dict[str, Any], image: np.ndarray, geometry: dict, seed: int, level: Level
) -> Finished:
    """Render, score and write one item; returns its record, the sha256 of its four files and its pixel digests."""
    track, number, preset = level
    sid = sample_id(item, 0)
    key = f"{track}/{number}/{sid}"
    stream = f"{track}/{number}/{item.id}"
    degrader = Degrader(preset)
    plan = degrader.plan(sample_rng(seed, stream, 0), image.shape[:2], is_gray(image))
    rendered = degrader.render(image, plan)
    folder = out / key
    folder.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    pixels: dict[str, str] = {}
    for kind in IMAGES:
        image = getattr(rendered, kind)
        data = encode_png(image)
        atomic_write(folder / f"{kind}.png", data)
        digests[kind] = _sha256(data)
        pixels[f"{key}/{kind}.png"] = pixel_sha256(image)
    record = {
        "key": key,
        "track": track,
        "level": number,
        "id": sid,
        "source": source,
        "seed": seed,
        "stream": stream,
        "spawn_key": list(spawn_key(stream, 0)),
        **geometry,
        "size": [image.shape[1], image.shape[0]],
        **plan.to_record(),
        "mask_coverage": round(float(np.count_nonzero(rendered.mask)) / rendered.mask.size, 6),
        "sha256": digests,
        "input": image_scores(rendered.degraded, rendered.clean, rendered.mask),
    }
    data = (json.dumps(record, indent=1) + "\n").encode("utf-8")
    atomic_write(folder / "record.json", data)
    files = {f"{key}/{kind}.png": sha for kind, sha in digests.items()}
    files[f"{key}/record.json"] = _sha256(data)
    return record, files, pixels


def _render_photo(out: Path, item: SourceItem, levels: list[Level], seed: int, size: int) -> list[tuple[str, Any]]:
    """Worker body: decode and crop a photo once, then render its unfinished items; failures become entries."""
    cv2.setNumThreads(1)
    keep_freed_memory()
    try:
        pixels, checksum = load_image(item.path)
        source = {"id": item.id, "ref": item.ref, "sha256": checksum, "size": [pixels.shape[1], pixels.shape[0]]}
        image, geometry = _square(pixels, size, item.ref)
    except ImageError as exc:
        return [("error", {"id": item.id, "ref": item.ref, "error": str(exc)})]
    results: list[tuple[str, Any]] = []
    for level in levels:
        try:
            results.append(("ok", _render_item(out, item, source, image, geometry, seed, level)))
        except Exception as exc:  # one failing render must not stop the suite; it is reported, not dropped
            key = f"{level[0]}/{level[1]}/{sample_id(item, 0)}"
            message = f"{item.ref}: {type(exc).__name__}: {exc}".splitlines()[0]
            results.append(("error", {"key": key, "ref": item.ref, "error": message}))
    return results


def _finished(out: Path, key: str, ref: str) -> Finished | None:
    """The record, file and pixel digests of an item already on disk whose files match its record, else None."""
    path = out / key / "record.json"
    try:
        data = path.read_bytes()
        record = json.loads(data)
        expected = record["sha256"]
        if record["key"] != key or record["source"]["ref"] != ref or set(expected) != set(IMAGES):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    files, pixels = {}, {}
    for kind in IMAGES:
        rel = f"{key}/{kind}.png"
        try:
            png = (out / rel).read_bytes()
        except OSError:
            return None
        pixel_sha = _png_pixel_sha256(png)
        if _sha256(png) != expected[kind] or pixel_sha is None:
            return None
        files[rel], pixels[rel] = expected[kind], pixel_sha
    files[f"{key}/record.json"] = _sha256(data)
    return record, files, pixels


def _open_out(out: Path, identity: dict[str, Any]) -> None:
    """Make `out` ready: new, or a (partial) make of this very suite; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise SuiteError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in (PARTIAL, MANIFEST):
        path = out / name
        if not path.exists():
            continue
        try:
            old = json.loads(path.read_text("utf-8"))
            differs = [key for key in identity if old.get(key) != identity[key]]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            differs = ["unreadable " + name]
        if differs:
            raise SuiteError(f"{out} holds another suite ({', '.join(differs)} differs); use a new --out folder")
        break
    else:
        if any(out.iterdir()):
            raise SuiteError(f"{out}: folder is not empty and holds no suite; use a new --out folder")
    for tmp in out.rglob(".*.tmp"):  # left by a killed run (degrade.writer.atomic_write)
        tmp.unlink()
    atomic_write(out / PARTIAL, (json.dumps(identity, indent=1) + "\n").encode("utf-8"))


def make_suite(name_or_toml: str | Path, source: Source, out: Path, jobs: int = 1, progress: bool = False) -> Suite:
    """Render a suite from `source` into `out` and write its manifest; reruns resume.

    Items already on disk whose files match their record.json are kept, not rendered again. Photos that cannot
    be decoded and renders that fail are listed under "errors" in suite.json (and printed when `progress`).
    Raises SuiteError when `out` holds another suite or no item could be made.
    """
    definition, levels = _load(name_or_toml)
    out = Path(out)
    seed, images = definition["seed"], definition["images"]
    identity = {
        "format": FORMAT,
        "name": definition["name"],
        "definition": definition,
        "engine": environment(),  # the versions that decide the bytes: a rerun under others is refused
        "source": source.description,
    }
    _open_out(out, identity)
    selected, errors, too_small = _select(source, seed, images)
    errors = [dict(entry) for entry in source.errors] + errors
    done: dict[str, Finished] = {}
    todo: list[tuple[SourceItem, list[Level]]] = []
    for item in selected:
        missing = []
        for level in levels:
            key = f"{level[0]}/{level[1]}/{sample_id(item, 0)}"
            finished = _finished(out, key, item.ref)
            if finished is None:
                missing.append(level)
            else:
                done[key] = finished
        if missing:
            todo.append((item, missing))

    def tasks() -> Iterator[Any]:
        for item, missing in todo:
            yield delayed(_render_photo)(out, item, missing, seed, images["size"])

    with tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True) as bar:
        for entry in errors:
            bar.write(f"skipped {entry['error']}")
        for results in Parallel(n_jobs=jobs, batch_size=1, return_as="generator")(tasks()):
            for status, payload in results:
                if status == "ok":
                    done[payload[0]["key"]] = payload
                else:
                    errors.append(payload)
                    bar.write(f"skipped {payload['error']}")
            bar.update()
    if not done:
        raise SuiteError(f"{out}: no item could be made ({len(errors)} errors, {len(too_small)} photos too small)")
    manifest = _manifest(identity, levels, selected, done, errors, too_small)
    atomic_write(out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    (out / PARTIAL).unlink()
    return _suite(out, manifest, str(out / MANIFEST))


def _manifest(
    identity: dict[str, Any],
    levels: list[Level],
    selected: list[SourceItem],
    done: dict[str, Finished],
    errors: list[dict],
    too_small: list[dict],
) -> dict[str, Any]:
    """suite.json: items in definition order (track, level), photos by id; every file's sha256 and every image's
    pixel digest; the two checksums."""
    items = []
    files: dict[str, str] = {}
    pixels: dict[str, str] = {}
    ids = sorted(sample_id(item, 0) for item in selected)
    for track, number, _ in levels:
        for sid in ids:
            key = f"{track}/{number}/{sid}"
            if key not in done:
                continue
            record, digests, pixel_digests = done[key]
            files.update(digests)
            pixels.update(pixel_digests)
            paths = {kind: f"{key}/{kind}.png" for kind in IMAGES}
            item = {"key": key, "track": track, "level": number, "id": sid, **paths, "record": f"{key}/record.json"}
            items.append({**item, "input": record["input"]})
    files, pixels = dict(sorted(files.items())), dict(sorted(pixels.items()))
    selection = {"photos": len(selected), "too_small": too_small}
    return {
        **identity,
        "selection": selection,
        "items": items,
        "errors": errors,
        "files": files,
        "checksum": suite_checksum(files),
        "pixels": pixels,
        "pixel_checksum": suite_checksum(pixels),
    }


# --------------------------------------------------------------------------- reading and verifying


def _relative(rel: Any, where: str) -> str:
    """A manifest path, refused unless it is relative and stays inside the suite folder."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        raise SuiteError(f"{where}: bad file path {rel!r} (expected a relative POSIX path)")
    posix = PurePosixPath(rel)
    if posix.is_absolute() or PureWindowsPath(rel).drive or ".." in posix.parts:
        raise SuiteError(f"{where}: file path {rel!r} escapes the suite folder")
    return rel


def _suite(root: Path, manifest: Any, where: str) -> Suite:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SuiteError(f"{where}: not a suite manifest (format {FORMAT!r} expected)")
    root = Path(root).absolute()
    try:
        for rel, sha in manifest["files"].items():
            _relative(rel, where)
            if not isinstance(sha, str):
                raise TypeError(f"sha256 of {rel} is not a string")
        items = [
            SuiteItem(
                key=str(entry["key"]),
                track=str(entry["track"]),
                level=int(entry["level"]),
                id=str(entry["id"]),
                **{kind: root / _relative(entry[kind], where) for kind in ("clean", "degraded", "mask", "record")},
                input={str(k): float(v) for k, v in entry["input"].items()},
            )
            for entry in manifest["items"]
        ]
        return Suite(
            root=root, name=str(manifest["name"]), checksum=str(manifest["checksum"]), items=items, manifest=manifest
        )
    except SuiteError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SuiteError(f"{where}: malformed suite manifest ({type(exc).__name__}: {exc})") from None


def open_suite(root: Path) -> Suite:
    """The suite in `root`, from its suite.json; SuiteError when it is missing or not a valid manifest."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: not found (not a suite folder, or its make did not finish)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: not a readable suite manifest ({exc})") from None
    return _suite(Path(root), manifest, str(path))


def _files_on_disk(root: Path) -> set[str]:
    """Relative POSIX paths of every file below `root` except suite.json at its top."""
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if rel != MANIFEST:
                found.add(rel)
    return found


def verify_suite(root: Path) -> list[str]:
    """Recompute every checksum of a suite folder; one line per problem (missing, modified, extra file), [] = exact.

    Raises SuiteError when suite.json itself is missing or unreadable.
    """
    suite = open_suite(root)
    files: dict[str, str] = suite.manifest["files"]
    problems = []
    if suite_checksum(files) != suite.checksum:
        problems.append(f"{MANIFEST}: checksum {suite.checksum} does not match its list of files")
    for item in suite.items:
        for path in (item.clean, item.degraded, item.mask, item.record):
            rel = path.relative_to(suite.root).as_posix()
            if rel not in files:
                problems.append(f"{MANIFEST}: item {item.key} names {rel}, which has no checksum")
    # Each file is read once, for its sha256 and, where digests were recorded, its pixels (suites made before
    # pixel digests have none to check, so their images are not decoded).
    images = _image_paths(suite) if "pixels" in suite.manifest else set()
    decoded: dict[str, str | None] = {}
    for rel in sorted(set(files) | images):
        data = _read(suite.root / rel)
        if rel in files and data is None:
            problems.append(f"missing: {rel}")
        elif rel in files and _sha256(data) != files[rel]:
            problems.append(f"modified: {rel} (sha256 differs)")
        if rel in images:
            decoded[rel] = None if data is None else _png_pixel_sha256(data)
    problems += [f"extra file: {rel}" for rel in sorted(_files_on_disk(suite.root) - set(files))]
    if "pixels" in suite.manifest:
        problems += _verify_pixels(suite.manifest, decoded)
    return problems


def _verify_pixels(manifest: dict[str, Any], decoded: dict[str, str | None]) -> list[str]:
    recorded: dict[str, str] = manifest["pixels"]
    problems = []
    if suite_checksum(recorded) != manifest.get("pixel_checksum"):
        problems.append(f"{MANIFEST}: pixel checksum {manifest.get('pixel_checksum')} does not match its pixels")
    for rel, actual in sorted(decoded.items()):
        if rel not in recorded:
            problems.append(f"{MANIFEST}: {rel} has no pixel digest")
        elif actual is not None and actual != recorded[rel]:
            problems.append(f"pixels differ: {rel}")
    unnamed = sorted(set(recorded) - set(decoded))
    problems += [f"{MANIFEST}: pixel digest of {rel}, which no item names" for rel in unnamed]
    return problems


def _image_paths(suite: Suite) -> set[str]:
    """Relative paths of the images (clean, degraded, mask) the items name."""
    return {
        path.relative_to(suite.root).as_posix()
        for item in suite.items
        for path in (item.clean, item.degraded, item.mask)
    }


def _decoded_pixels(suite: Suite) -> dict[str, str | None]:
    """`pixel_sha256` of every image the items name, decoded from disk (None: missing or not a PNG)."""
    found: dict[str, str | None] = {}
    for rel in _image_paths(suite):
        try:
            found[rel] = _png_pixel_sha256((suite.root / rel).read_bytes())
        except OSError:
            found[rel] = None
    return found


def pixel_checksum(root: Path) -> str:
    """The pixel checksum of the suite in `root`, computed from its images (any suite, whatever its encoder).

    Raises SuiteError naming the first image that is missing or does not decode."""
    suite = open_suite(root)
    pixels = _decoded_pixels(suite)
    for rel, sha in pixels.items():
        if sha is None:
            raise SuiteError(f"{suite.root / rel}: missing or not a PNG image")
    return suite_checksum(pixels)
