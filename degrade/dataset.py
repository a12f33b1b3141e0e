"""Generate many paired samples in parallel, streaming, resumable and independent of worker count.

Workers (joblib processes here, or a Dask cluster through `degrade.cluster`) render chunks of samples
and write their files themselves; this process takes the results back in submission order and writes
the manifest, so every file is the same whatever runs the work.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
from joblib import Parallel, delayed
from tqdm import tqdm

import degrade
from degrade.allocator import keep_freed_memory
from degrade.ops.base import LABEL_NAMES
from degrade.pipeline import Degrader, Rendered, is_gray
from degrade.seeding import sample_rng, spawn_key
from degrade.shards import ShardWriter
from degrade.sources import ImageError, Source, SourceItem, load_image
from degrade.versions import libraries
from degrade.writer import FOLDER_LAYOUT, FORMAT, DatasetError, DatasetWriter, write_sample

_MAX_CHUNK = 32  # samples per worker round trip
T = TypeVar("T")


class Executor(Protocol):
    """Runs `fn(*task)` for each task on `workers` workers and yields the results in task order."""

    workers: int

    def map(self, fn: Callable[..., T], tasks: Iterable[tuple[Any, ...]]) -> Iterator[T]: ...


@dataclass(frozen=True)
class JoblibExecutor:
    """Worker processes on this machine (`workers` 1: in this process)."""

    workers: int = 1

    def map(self, fn: Callable[..., T], tasks: Iterable[tuple[Any, ...]]) -> Iterator[T]:
        # Lazy both ways: joblib pulls tasks as workers free up and hands results back in order.
        return Parallel(n_jobs=self.workers, batch_size=1, return_as="generator")(delayed(fn)(*t) for t in tasks)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a sample's bytes besides its source image."""

    preset: str  # the resolved preset as JSON, in preset order (hashable, cheap to ship to workers)
    seed: int = 0
    repeats: int = 1
    size: int | None = None  # shorter side after resizing, px
    crop: int | None = None  # square random crop, px

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "preset": json.loads(self.preset)}


@dataclass(frozen=True)
class Summary:
    written: int
    skipped: int
    failed: int
    seconds: float

    def line(self) -> str:
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        return (
            f"written {self.written}, skipped {self.skipped} (already done), failed {self.failed}, {rate:.1f} pairs/s"
        )


def sample_id(item: SourceItem, repeat: int) -> str:
    """Output name of one sample: the source id and the repeat index."""
    return f"{item.id}_r{repeat}"


@lru_cache(maxsize=4)
def _degrader(preset_json: str) -> Degrader:
    return Degrader(json.loads(preset_json))


def prepare(
    image: np.ndarray, rng: np.random.Generator, size: int | None, crop: int | None, ref: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Resize the shorter side to `size` and take a random square `crop`; returns the image and what was done."""
    h, w = image.shape[:2]
    info: dict[str, Any] = {"resize": None, "crop": None}
    if size is not None and min(h, w) != size:
        scale = size / min(h, w)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
        info["resize"] = [new_w, new_h]
        h, w = new_h, new_w
    if crop is not None:
        if h < crop or w < crop:
            raise ImageError(f"{ref}: image is {w}x{h}, smaller than --crop {crop}")
        x, y = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
        image = np.ascontiguousarray(image[y : y + crop, x : x + crop])
        info["crop"] = [x, y, crop, crop]
    return image, info


def render_sample(item: SourceItem, repeat: int, settings: Settings) -> tuple[dict[str, Any], Rendered]:
    """Load, prepare, plan and render one sample; returns its manifest record (without files) and images."""
    image, checksum = load_image(item.path)
    rng = sample_rng(settings.seed, item.id, repeat)
    source = {"id": item.id, "ref": item.ref, "sha256": checksum, "size": [image.shape[1], image.shape[0]]}
    image, geometry = prepare(image, rng, settings.size, settings.crop, item.ref)
    degrader = _degrader(settings.preset)
    plan = degrader.plan(rng, image.shape[:2], is_gray(image))
    rendered = degrader.render(image, plan)
    record = {
        "id": sample_id(item, repeat),
        "source": source,
        "repeat": repeat,
        "seed": settings.seed,
        "spawn_key": list(spawn_key(item.id, repeat)),
        **geometry,
        "size": [image.shape[1], image.shape[0]],
        **plan.to_record(),
        "mask_coverage": round(float(np.count_nonzero(rendered.mask)) / rendered.mask.size, 6),
    }
    return record, rendered


def _render_task(out: Path, item: SourceItem, repeat: int, settings: Settings) -> tuple[str, dict[str, Any]]:
    """Render and write one sample, or describe why it could not be."""
    try:
        record, rendered = render_sample(item, repeat, settings)
    except ImageError as exc:
        return "error", {"id": sample_id(item, repeat), "ref": item.ref, "error": str(exc)}
    except Exception as exc:  # one bad input must not stop a million-image run; it is reported, not dropped
        message = f"{item.ref}: {type(exc).__name__}: {exc}".splitlines()[0]
        return "error", {"id": sample_id(item, repeat), "ref": item.ref, "error": message}
    record.update(write_sample(out, record["id"], rendered))
    return "ok", record


def _render_chunk(
    out: Path, chunk: list[tuple[SourceItem, int]], settings: Settings
) -> list[tuple[str, dict[str, Any]]]:
    """Worker body: a chunk of samples per round trip, so inter-process overhead stays small next to the work."""
    cv2.setNumThreads(1)
    keep_freed_memory()
    return [_render_task(out, item, repeat, settings) for item, repeat in chunk]


def dataset_info(source: Source, settings: Settings, shard_size: int | None = None) -> dict[str, Any]:
    """The identity of a dataset, written to dataset.json and compared when a run resumes.

    Only what changes the output is in it: not the worker count, not the backend."""
    description = {k: v for k, v in source.description.items() if k != "count"}
    return {
        "format": FORMAT,
        "engine": degrade.__version__,
        "libraries": libraries(),
        "settings": settings.to_json(),
        "layout": FOLDER_LAYOUT if shard_size is None else {"kind": "shards", "shard_size": shard_size},
        "source": description,
        "labels": {str(value): name for value, name in LABEL_NAMES.items()},
    }


def generate(
    source: Source,
    out: Path,
    settings: Settings,
    *,
    jobs: int = 1,
    limit: int | None = None,
    progress: bool = True,
    executor: Executor | None = None,
    shard_size: int | None = None,
) -> Summary:
    """Render every (source image, repeat) into `out`, skipping finished samples.

    `executor` runs the work (default: `jobs` joblib processes); `shard_size` packs the samples into tar
    shards of that many samples instead of the folder layout. See `writer` and `shards` for the layouts.
    """
    start = time.perf_counter()
    executor = executor or JoblibExecutor(jobs)
    items = source.items[:limit] if limit is not None else source.items
    shards = None if shard_size is None else ShardWriter(out, shard_size)
    writer = DatasetWriter(out, dataset_info(source, settings, shard_size), shards)
    done = writer.open()
    for entry in source.errors:
        writer.add_error(entry)

    def todo() -> Iterator[tuple[SourceItem, int]]:
        return ((item, r) for item in items for r in range(settings.repeats) if sample_id(item, r) not in done)

    remaining = sum(1 for _ in todo())
    skipped = len(items) * settings.repeats - remaining
    written = 0
    chunk_size = max(1, min(_MAX_CHUNK, remaining // (8 * executor.workers)))
    root = writer.sample_root.absolute()  # workers elsewhere (a cluster) must not depend on this process's cwd

    def tasks() -> Iterator[tuple[Path, list[tuple[SourceItem, int]], Settings]]:  # lazy: memory stays flat
        pending = todo()
        while chunk := list(itertools.islice(pending, chunk_size)):
            yield root, chunk, settings

    try:
        if remaining:
            writer.reopen_tail()
        with (
            tqdm(total=remaining, unit="pair", disable=not progress, dynamic_ncols=True) as bar,
            closing(executor.map(_render_chunk, tasks())) as chunks,
        ):
            for results in chunks:
                for status, payload in results:
                    if status == "ok":
                        writer.add_record(payload)
                        written += 1
                    else:
                        writer.add_error(payload)
                        bar.write(f"skipped {payload['error']}")
                    bar.update()
    except BaseException:
        writer.close(complete=False)
        raise
    writer.close()
    return Summary(written, skipped, writer.failed, time.perf_counter() - start)


__all__ = [
    "DatasetError",
    "Executor",
    "JoblibExecutor",
    "Settings",
    "Summary",
    "generate",
    "render_sample",
    "sample_id",
]
