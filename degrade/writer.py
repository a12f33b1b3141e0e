"""The on-disk dataset layout: atomic file writes, the manifest, resume and repair.

    out/dataset.json     engine version, resolved settings and preset, layout, source, counts
    out/manifest.jsonl   one JSON line per finished sample, in processing order
    out/{clean,degraded,mask,labels}/ID.png
    out/errors.jsonl     inputs that were skipped, and why

Image files are written to a temporary name and renamed, so a file either exists whole
or not at all. A sample counts as finished once its manifest line is written, which
happens only after all four files exist; a killed run leaves at most a few orphan
files (re-rendered byte-identically on resume) and possibly a torn last manifest line
(cut off on resume). In the shards layout (`degrade.shards`) the four files are staged
in `out/staging/` and then packed into tar shards; the manifest works the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from degrade.pipeline import Rendered

if TYPE_CHECKING:
    from degrade.shards import ShardWriter

KINDS = ("clean", "degraded", "mask", "labels")
FORMAT = "patina-pairs/1"
FOLDER_LAYOUT = {"kind": "folder"}


class DatasetError(RuntimeError):
    """The output folder cannot be used as asked; the message says why in one line."""


# PNG "up" filtering: on photographs it encodes ~7% faster and ~8% smaller than OpenCV's default
# ("sub"), measured on old-photo and bopbtl outputs at 256 px and VOC size; lossless either way.
_PNG_FLAGS = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]


def _png(img: np.ndarray) -> bytes:
    """OpenCV's PNG encoding of a BGR or single-channel uint8 image, with our flags."""
    ok, buf = cv2.imencode(".png", img, _PNG_FLAGS)
    if not ok:
        raise DatasetError(f"PNG encoding failed for an image of shape {img.shape}")
    return buf.tobytes()


@lru_cache(maxsize=32)
def _blank_png(height: int, width: int) -> bytes:
    return _png(np.zeros((height, width), np.uint8))


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB (H, W, 3) or single-channel (H, W) image.

    All-zero masks and label maps (every sample of an unstructured preset) are encoded once
    per size and reused: the bytes are identical, and it saves two encodes per sample.
    """
    if img.ndim == 2 and not img.any():
        return _blank_png(*img.shape)
    return _png(cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def sample_files(sample_id: str) -> dict[str, str]:
    """Relative paths of a sample's four files."""
    return {kind: f"{kind}/{sample_id}.png" for kind in KINDS}


def write_sample(out: Path, sample_id: str, rendered: Rendered) -> dict[str, Any]:
    """Encode and write a sample's four images; return their paths and SHA-256 checksums."""
    files = sample_files(sample_id)
    checksums = {}
    for kind in ("clean", "mask", "labels", "degraded"):
        data = encode_png(getattr(rendered, kind))
        atomic_write(out / files[kind], data)
        checksums[kind] = hashlib.sha256(data).hexdigest()
    return {"files": files, "sha256": {kind: checksums[kind] for kind in KINDS}}


def json_line(obj: Any) -> str:
    """One compact, deterministic JSON line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


class DatasetWriter:
    """Owns `out/`: checks a rerun is compatible, resumes, and appends records and errors in order.

    With `shards`, sample files go to `shards.staging` and finished samples are handed on to be packed.
    """

    def __init__(self, out: Path, info: dict[str, Any], shards: ShardWriter | None = None) -> None:
        self.out = Path(out)
        self.info = info
        self.shards = shards
        self.sample_root = self.out if shards is None else shards.staging  # where workers write sample files
        self._manifest = None
        self._errors = None
        self.done: set[str] = set()
        self.failed = 0

    def open(self) -> set[str]:
        """Prepare the folder and return the ids already finished (their files all present, or packed)."""
        if self.out.exists() and not self.out.is_dir():
            raise DatasetError(f"{self.out}: exists and is not a folder")
        for kind in KINDS:
            (self.sample_root / kind).mkdir(parents=True, exist_ok=True)
            for tmp in (self.sample_root / kind).glob(".*.tmp"):
                tmp.unlink()
        meta = self.out / "dataset.json"
        if meta.exists():
            try:
                old = json.loads(meta.read_text("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DatasetError(
                    f"{meta}: not a readable dataset description ({exc}); use a new --out folder"
                ) from None
            if "libraries" not in old:  # written before the versions were recorded: unknown, so not claimed now
                self.info.pop("libraries", None)
            self._check_compatible(old)
        self._write_meta(counts=None, complete=False)
        self.done = self._load_manifest()
        # Failed inputs are retried, so their lines are rewritten in order by this run.
        self._errors = open(self.out / "errors.jsonl", "w", encoding="utf-8")
        self._manifest = open(self.out / "manifest.jsonl", "a", encoding="utf-8")
        return set(self.done)

    def _check_compatible(self, old: dict[str, Any]) -> None:
        old = {"layout": FOLDER_LAYOUT, **old}  # datasets written before shards existed are folders
        for key in ("format", "engine", "libraries", "settings", "layout", "source"):
            if old.get(key) != self.info.get(key):
                detail = _first_difference(old.get(key), self.info.get(key), key)
                raise DatasetError(
                    f"{self.out} holds a dataset made with different settings ({detail}); "
                    "use a new --out folder, or rerun the original command to resume"
                )

    def _load_manifest(self) -> set[str]:
        """Ids in the manifest whose files all exist (or are packed in a shard); cuts a torn last line and
        drops lines whose files are gone. Streams the manifest: memory grows with the ids, not the records."""
        path = self.out / "manifest.jsonl"
        ids: list[str] = []
        complete_bytes = 0
        if path.exists():
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.endswith(b"\n"):
                        break
                    complete_bytes += len(line)
                    ids.append(json.loads(line)["id"])
        if self.shards is None:
            done = {sample_id for sample_id in ids if self._files_exist(sample_id)}
        else:
            packed = self.shards.open(set(ids))
            done = {sample_id for sample_id in ids if sample_id in packed or self.shards.staged(sample_id)}
            waiting = done - packed  # finished but not packed yet: queued for the next shard, in manifest order
            self.shards.resume([item for item in _lines(path) if item[0] in waiting] if waiting else [])
        if len(done) < len(ids):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as dst:
                for sample_id, line in _lines(path):
                    if sample_id in done:
                        dst.write(line)
            os.replace(tmp, path)
        elif path.exists() and complete_bytes < path.stat().st_size:
            os.truncate(path, complete_bytes)
        return done

    def _files_exist(self, sample_id: str) -> bool:
        return all((self.out / rel).exists() for rel in sample_files(sample_id).values())

    def reopen_tail(self) -> None:
        """About to add samples: in the shards layout a finished run's short last shard takes them first."""
        if self.shards is not None:
            self.shards.reopen_tail()

    def add_record(self, record: dict[str, Any]) -> None:
        if self.shards is not None:
            record = {**record, "files": self.shards.files(record["id"])}
        line = json_line(record)
        self._manifest.write(line)
        self._manifest.flush()
        self.done.add(record["id"])
        if self.shards is not None:
            self.shards.add(record["id"], line.encode("utf-8"))

    def add_error(self, entry: dict[str, Any]) -> None:
        self._errors.write(json_line(entry))
        self._errors.flush()
        self.failed += 1

    def close(self, complete: bool = True) -> None:
        """Close the logs; a completed run records its final counts in dataset.json."""
        for fh in (self._manifest, self._errors):
            if fh is not None:
                fh.close()
        if self.shards is not None:
            self.shards.close(complete)
        if not complete:
            return
        self._write_meta(counts={"samples": len(self.done), "failed": self.failed}, complete=True)

    def _write_meta(self, counts: dict[str, int] | None, complete: bool) -> None:
        text = json.dumps({**self.info, "counts": counts, "complete": complete}, indent=2) + "\n"
        atomic_write(self.out / "dataset.json", text.encode("utf-8"))


def _lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """(id, line) of each complete line of a manifest."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield json.loads(line)["id"], line


def _first_difference(old: Any, new: Any, path: str) -> str:
    """Where two JSON values first differ, e.g. 'settings.seed: 0 before, 1 now'."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}.{key}")
    return f"{path}: {json.dumps(old)[:60]} before, {json.dumps(new)[:60]} now"
