"""WebDataset-style tar shards: deterministic bytes, an index, resume and random access by offset.

    out/pairs-000000.tar   consecutive manifest samples, each as the members <id>.clean.png, <id>.degraded.png,
                           <id>.mask.png, <id>.labels.png and <id>.json (its manifest line), in that order
    out/shards.jsonl       one line per finished shard: {"shard", "samples", "bytes", "sha256", "ids"}
    out/staging/           rendered samples waiting for their shard, in the folder layout; removed when a run completes

Workers render into `staging/` exactly as they do into a folder dataset; the main process packs every
`size` finished samples, in manifest order, into the next shard (written to a temporary name and renamed,
then indexed, then its staged files removed). So shard k holds manifest samples k*size..(k+1)*size-1 and
only the last shard of a finished run holds fewer. Tar bytes are fixed: PAX format, mtime 0, uid/gid 0,
empty user and group names, mode 0644, members in the order above.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from degrade.writer import KINDS, DatasetError, atomic_write, json_line

INDEX = "shards.jsonl"
STAGING = "staging"
_NAME = re.compile(r"pairs-(\d{6,})\.tar")


class ShardError(DatasetError):
    """A shards dataset that cannot be used as it is; the message names the file."""


def shard_name(number: int) -> str:
    return f"pairs-{number:06d}.tar"


def member_names(sample_id: str) -> dict[str, str]:
    """The image members of one sample inside its shard (also its manifest record's `files`)."""
    return {kind: f"{sample_id}.{kind}.png" for kind in KINDS}


def split_member(name: str) -> tuple[str, str] | None:
    """(sample id, kind) of a member name, kind one of KINDS or "json"; None for anything else.

    Sample ids may contain dots (`my.photo.jpg` in a folder source has the id `my.photo`), so the kind is
    read from the known suffixes, not from the first dot as WebDataset's default grouping does.
    """
    for kind in (*KINDS, "json"):
        suffix = f".{kind}.png" if kind != "json" else ".json"
        if name.endswith(suffix) and len(name) > len(suffix) and "/" not in name:
            return name[: -len(suffix)], kind
    return None


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class ShardWriter:
    """Packs staged samples of `out/` into shards of `size` samples, in the order they are added.

    `open` keeps the finished shards that still match the index and the manifest and cleans up after a
    killed run; `add` takes each new manifest line; `close` packs the rest once a run completes.
    """

    def __init__(self, out: Path, size: int) -> None:
        self.out, self.size = Path(out), size
        self.staging = self.out / STAGING
        self.entries: list[dict[str, Any]] = []
        self.pending: list[tuple[str, bytes]] = []  # (id, manifest line) staged but not packed, in order
        self._index = None

    def files(self, sample_id: str) -> dict[str, str]:
        """What a manifest record's `files` says in this layout: the sample's members in its shard."""
        return member_names(sample_id)

    def staged(self, sample_id: str) -> bool:
        return all((self.staging / kind / f"{sample_id}.png").exists() for kind in KINDS)

    def open(self, manifest_ids: set[str]) -> set[str]:
        """Verify the finished shards; return the ids they hold.

        A shard is kept when its file has the indexed size and every id it holds is in the manifest;
        any other shard is deleted, so its samples are rendered again. Leftovers of a killed run go:
        temporary tars, tars that were renamed but never indexed, staged files of packed samples.
        The staging folders exist already (the dataset writer makes them and clears their temporary files).
        """
        for tmp in self.out.glob(".pairs-*.tmp"):
            tmp.unlink()
        index = self.out / INDEX
        lines = index.read_bytes().splitlines(keepends=True) if index.exists() else []
        kept = []
        for line in lines:
            try:
                entry = json.loads(line) if line.endswith(b"\n") else None
                path, size, ids = self.out / entry["shard"], entry["bytes"], set(entry["ids"])
                int(entry["samples"])
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # torn by a kill, or damaged: the shards from here on are made again
            if _NAME.fullmatch(path.name) is None or path.parent != self.out:
                break
            if path.is_file() and path.stat().st_size == size and ids <= manifest_ids:
                kept.append(entry)
        names = {entry["shard"] for entry in kept}
        for path in self.out.glob("pairs-*.tar"):
            if path.name not in names:
                path.unlink()
        self.entries = kept
        if len(kept) != len(lines):
            self._rewrite_index()
        packed = {sample_id for entry in kept for sample_id in entry["ids"]}
        for kind in KINDS:
            with os.scandir(self.staging / kind) as found:
                for item in found:
                    if item.name.removesuffix(".png") in packed:
                        os.unlink(item.path)
        self._index = open(index, "a", encoding="utf-8")
        return packed

    def resume(self, lines: Iterable[tuple[str, bytes]]) -> None:
        """Queue the finished manifest samples that are not packed yet (in manifest order)."""
        self.pending = list(lines)

    def reopen_tail(self) -> None:
        """Before adding samples to a finished dataset: unpack its last shard if it is short, so the new
        samples fill it up and the shards come out as one uninterrupted run would have made them."""
        if not self.entries or self.entries[-1]["samples"] >= self.size:
            return
        entry = self.entries[-1]
        path, ids, tail = self.out / entry["shard"], set(entry["ids"]), []
        try:
            with tarfile.open(path, "r:") as tar:
                for info in tar:
                    parsed = split_member(info.name)
                    if parsed is None or parsed[0] not in ids or not info.isfile():
                        raise ShardError(f"{path}: unexpected member {info.name!r}; delete the file to redo it")
                    data = tar.extractfile(info).read()
                    if parsed[1] == "json":
                        tail.append((parsed[0], data))
                    else:
                        atomic_write(self.staging / parsed[1] / f"{parsed[0]}.png", data)
        except tarfile.TarError as exc:
            raise ShardError(f"{path}: unreadable shard ({exc}); delete the file to redo it") from None
        self.entries.pop()
        self._rewrite_index()
        (self.out / entry["shard"]).unlink()
        self.pending = tail + self.pending

    def add(self, sample_id: str, line: bytes) -> None:
        self.pending.append((sample_id, line))
        if len(self.pending) >= self.size:
            self._pack(self.pending[: self.size])
            self.pending = self.pending[self.size :]

    def close(self, complete: bool = True) -> None:
        """A completed run packs what is left (a shorter last shard) and removes the staging folder."""
        if complete and self.pending:
            self._pack(self.pending)
            self.pending = []
        if self._index is not None:
            self._index.close()
            self._index = None
        if complete:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _pack(self, batch: list[tuple[str, bytes]]) -> None:
        number = 1 + max((_number(entry["shard"]) for entry in self.entries), default=-1)
        name = shard_name(number)
        tmp = self.out / f".{name}.{os.getpid()}.tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for sample_id, line in batch:
                for kind, member in member_names(sample_id).items():
                    _add(tar, member, (self.staging / kind / f"{sample_id}.png").read_bytes())
                _add(tar, f"{sample_id}.json", line)
        entry = {
            "shard": name,
            "samples": len(batch),
            "bytes": tmp.stat().st_size,
            "sha256": _sha256(tmp),
            "ids": [sample_id for sample_id, _ in batch],
        }
        os.replace(tmp, self.out / name)
        self._index.write(json_line(entry))
        self._index.flush()
        self.entries.append(entry)
        for sample_id, _ in batch:
            for kind in KINDS:
                (self.staging / kind / f"{sample_id}.png").unlink()

    def _rewrite_index(self) -> None:
        atomic_write(self.out / INDEX, "".join(json_line(entry) for entry in self.entries).encode("utf-8"))
        if self._index is not None:  # the append handle must follow the new file
            self._index.close()
            self._index = open(self.out / INDEX, "a", encoding="utf-8")


def _number(name: str) -> int:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ShardError(f"{INDEX}: {name!r} is not a shard name")
    return int(match.group(1))


@dataclass(frozen=True)
class Member:
    """Where one member's bytes lie: a shard file, the offset of its data and its size."""

    shard: Path
    offset: int
    size: int

    def read(self) -> bytes:
        with open(self.shard, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise ShardError(f"{self.shard}: truncated (member at byte {self.offset} is cut off)")
        return data


def is_shards(root: Path) -> bool:
    """Whether `root`'s dataset.json says the samples are in shards (a folder without one is a folder dataset)."""
    meta = Path(root) / "dataset.json"
    if not meta.is_file():
        return False
    try:
        info = json.loads(meta.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{meta}: not a readable dataset description ({exc})") from None
    return isinstance(info, dict) and (info.get("layout") or {}).get("kind") == "shards"


def read_index(root: Path) -> list[tuple[str, dict[str, Member]]]:
    """Every packed sample of a shards dataset, in order: its id and where each member's bytes are.

    Scans each shard's tar headers once (no image data is read) and checks them against shards.jsonl.
    Samples still in `staging/` (an unfinished run) are not included.
    """
    root = Path(root)
    index = root / INDEX
    if not index.is_file():
        raise ShardError(f"{root}: a shards dataset without {INDEX}; rerun degrade-gen to finish it")
    samples: dict[str, dict[str, Member]] = {}
    for number, line in enumerate(index.read_text("utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            path, ids = root / entry["shard"], entry["ids"]
            _number(entry["shard"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ShardError(f"{index}:{number}: not a shard entry ({exc})") from None
        found: dict[str, dict[str, Member]] = {}
        try:
            with tarfile.open(path, "r:") as tar:
                for info in tar:
                    parsed = split_member(info.name)
                    if parsed is None or not info.isfile():
                        raise ShardError(f"{path}: unexpected member {info.name!r}")
                    found.setdefault(parsed[0], {})[parsed[1]] = Member(path, info.offset_data, info.size)
        except (OSError, tarfile.TarError) as exc:
            raise ShardError(f"{path}: unreadable shard ({exc})") from None
        if list(found) != ids:
            raise ShardError(f"{path}: holds other samples than {INDEX} lists; rerun degrade-gen to repair it")
        for sample_id, members in found.items():
            if set(members) != {*KINDS, "json"}:
                raise ShardError(f"{path}: sample {sample_id} lacks members ({', '.join(sorted(members))} only)")
        samples.update(found)
    return list(samples.items())
