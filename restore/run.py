"""`restore run`: restore one photo or a folder of them, the way a person with scanned prints uses it.

A folder is searched recursively for photos; each is written as PNG under the output folder with its
relative path and name kept (`a/b.jpg` -> `OUT/a/b.png`; when two photos of one folder share a name,
`b.jpg.png` and `b.tif.png`). Outputs are written atomically. A rerun skips photos already restored, so an
interrupted folder resumes; a photo that cannot be read is reported on one line and the others go on.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restore.photos import PHOTO_SUFFIXES, AlphaDropped, ImageError, read_photo, write_png
from restore.pipeline import Restorer, Scratches


@dataclass(frozen=True)
class Job:
    """One photo to restore: where it is, where its restoration (and optionally its mask) goes."""

    source: Path
    out: Path
    mask: Path | None = None


@dataclass
class Report:
    """What a run did: restored and skipped outputs, failures as one-line messages, warnings."""

    restored: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def find_photos(folder: Path) -> list[Path]:
    """Photos under `folder` (recursively, by suffix, hidden files skipped), sorted."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in PHOTO_SUFFIXES and path.is_file() and not path.name.startswith(".")
    )


def folder_jobs(source: Path, out: Path, masks: Path | None) -> list[Job]:
    """Jobs for every photo under `source`, mirrored under `out` (and `masks`) as PNG."""
    photos = find_photos(source)
    stems = Counter(path.relative_to(source).with_suffix("") for path in photos)
    jobs = []
    for path in photos:
        relative = path.relative_to(source)
        name = relative.with_suffix(".png") if stems[relative.with_suffix("")] == 1 else Path(f"{relative}.png")
        jobs.append(Job(path, out / name, masks / name if masks else None))
    return jobs


def default_output(source: Path) -> Path:
    """Where a restoration goes when no --out is given: beside the input, `-restored` added."""
    if source.is_dir():
        return source.with_name(f"{source.name}-restored")
    return source.with_name(f"{source.stem}-restored.png")


def restore_jobs(
    restorer: Restorer,
    jobs: Iterable[Job],
    scratches: Scratches = "auto",
    overwrite: bool = False,
    step: Callable[[], None] | None = None,
) -> Report:
    """Restore each job's photo; unreadable photos are recorded in the report, never raised."""
    report = Report()
    for job in jobs:
        if not overwrite and job.out.exists() and (job.mask is None or job.mask.exists()):
            report.skipped.append(job.out)
        else:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", AlphaDropped)
                    photo = read_photo(job.source)
                report.warnings.extend(str(w.message) for w in caught if issubclass(w.category, AlphaDropped))
            except ImageError as exc:
                report.failed.append(str(exc))
            else:
                result = restorer.restore(photo.rgb[..., 0] if photo.gray else photo.rgb, scratches)
                if job.mask is not None:
                    mask = result.mask if result.mask is not None else np.zeros(photo.rgb.shape[:2], dtype=bool)
                    write_png(job.mask, mask.astype(np.uint8) * 255)
                write_png(job.out, result.image)
                report.restored.append(job.out)
        if step is not None:
            step()
    return report
