"""Run methods over a suite: per-image results as JSON lines, resumable, with a summary CSV over all methods.

    RESULTS/
      <method>/method.json      name, spec, oracle_mask, predicts_mask, suite {name, checksum, root}
      <method>/results.jsonl    one line per image: key, track, level, id, status ("ok" | "failed"), error, seconds,
                                the image scores and, for mask-predicting methods, the mask scores with tp/fp/fn
      <method>/outputs/<key>.png       the restored image (<key>.mask.png: the predicted mask, 0/255)
      summary.csv               one row per method x track x level

A line is appended (and flushed) only after the item's output files exist, so a killed run loses at most the item
it was working on; on resume a torn last line is dropped and that item redone, and every key already recorded, ok
or failed, is skipped (`retry_failed` runs the failed ones again). One results folder holds one suite: a method
folder made for another suite checksum, or for another spec under the same name, is refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from degrade.bench.methods import Job, Method, Result
from degrade.bench.metrics import image_scores, mask_scores, scores_from_counts
from degrade.bench.suite import Suite, SuiteItem
from degrade.sources import ImageError, load_image
from degrade.writer import atomic_write, encode_png, json_line

METHOD_FILE = "method.json"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.csv"
OUTPUTS = "outputs"
#: Scores averaged per image in the summary, in column order; other numeric keys a metric adds follow, sorted.
MEAN_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_in", "ssim_in", "psnr_out", "ssim_out")
#: Mask scores: pooled over the pixels of a group from summed counts, never averaged per image.
POOLED_KEYS = ("precision", "recall", "f1", "iou")
COUNT_KEYS = ("tp", "fp", "fn")
_RECORD_KEYS = ("key", "track", "level", "id", "status", "error", "seconds")
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,99}\Z")
_MAX_ERROR = 500


class RunError(RuntimeError):
    """A results folder cannot be used as asked; the message says why in one line."""


@dataclass
class MethodResults:
    """One method folder: its method.json and its records by key (the last line for a key wins)."""

    name: str
    info: dict[str, Any]
    records: dict[str, dict[str, Any]]
    folder: Path


@dataclass(frozen=True)
class RunCounts:
    """What one run of one method did: items skipped as already recorded, newly scored, newly failed."""

    name: str
    skipped: int
    ok: int
    failed: int

    def line(self) -> str:
        return f"{self.name}: {self.ok} ok, {self.failed} failed, {self.skipped} skipped (already done)"


def check_name(name: str) -> str:
    """A method name becomes a folder name: letters, digits and ._+- only, starting with a letter or digit."""
    if not _NAME_RE.match(name):
        raise RunError(f"method name {name!r} cannot name a results folder (use letters, digits and ._+- only)")
    return name


def one_line(text: str) -> str:
    """An error message as one bounded line, so a JSON line stays a line and a report cell stays a cell."""
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_ERROR else line[: _MAX_ERROR - 3] + "..."


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object")
    return data


def read_records(path: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """Records of a results.jsonl by key, and whether its last line was torn (cut off by a killed run).

    Only the last line may be torn; a bad line before it means the file was damaged some other way, and is refused.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}, False
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = text.split("\n")
    records: dict[str, dict[str, Any]] = {}
    torn = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ok = isinstance(record, dict) and isinstance(record.get("key"), str) and "status" in record
        except ValueError:
            ok = False
        if not ok:
            if number == len(lines):  # the last line, not ended by a newline: a write that was cut off
                torn = True
                continue
            raise RunError(f"{path}:{number}: not a results record (damaged file? remove the line to redo that image)")
        records[record["key"]] = record
    return records, torn


def load_results(out: Path) -> list[MethodResults]:
    """Every method folder under a results folder (one holding method.json), sorted by name."""
    if not out.is_dir():
        raise RunError(f"{out}: results folder not found")
    found = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and (p / METHOD_FILE).is_file()):
        info = _read_json(folder / METHOD_FILE)
        records, _ = read_records(folder / RESULTS_FILE)
        found.append(MethodResults(str(info.get("name", folder.name)), info, records, folder))
    return found


def _suite_info(suite: Suite) -> dict[str, str]:
    return {"name": suite.name, "checksum": suite.checksum, "root": str(suite.root.resolve())}


def _check_folder(out: Path, suite: Suite, names_specs: Sequence[tuple[str, str]]) -> None:
    """Refuse a results folder made for another suite, or a method name already used for another spec."""
    for folder in sorted(out.glob(f"*/{METHOD_FILE}")) if out.is_dir() else []:
        info = _read_json(folder)
        theirs = info.get("suite", {}) if isinstance(info.get("suite"), dict) else {}
        if theirs.get("checksum") != suite.checksum:
            raise RunError(
                f"{folder}: results for suite {theirs.get('name')!r} checksum {theirs.get('checksum')!r}, "
                f"not {suite.name!r} {suite.checksum}; use another --out"
            )
    for name, spec in names_specs:
        path = out / name / METHOD_FILE
        if path.is_file() and (old := _read_json(path).get("spec")) != spec:
            raise RunError(f"{path}: method {name!r} was run as {old!r}, not {spec!r}; give this one another --name")


def _record(item: SuiteItem, status: str, error: str | None, seconds: float) -> dict[str, Any]:
    return {
        "key": item.key,
        "track": item.track,
        "level": item.level,
        "id": item.id,
        "status": status,
        "error": None if error is None else one_line(error),
        "seconds": float(seconds),
    }


def _error_record(item: SuiteItem, error: str, seconds: float = 0.0) -> dict[str, Any]:
    return _record(item, "failed", error, seconds)


def _load(path: Path) -> np.ndarray:
    try:
        return load_image(path)[0]
    except ImageError as exc:
        raise RunError(f"{exc} (the suite is damaged: run degrade-bench verify)") from None


def _score(method: Method, item: SuiteItem, result: Result, truth: np.ndarray, folder: Path) -> dict[str, Any]:
    """Check, score and save one method output; raises ValueError with the reason when it is unusable."""
    output = result.output
    if output is None:
        raise ValueError("method returned no output")
    clean = _load(item.clean)
    image = output.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != clean.shape:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"output is {got}, expected {clean.shape} uint8")
    scores: dict[str, Any] = image_scores(image, clean, truth)
    if method.predicts_mask:
        if output.mask is None:
            raise ValueError("method predicts masks but returned none")
        scores.update(mask_scores(output.mask, truth))
    target = folder / OUTPUTS / item.key
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target.with_name(target.name + ".png"), encode_png(image))
    if method.predicts_mask:
        pred = np.where(np.asarray(output.mask) > 0, 255, 0).astype(np.uint8)
        atomic_write(target.with_name(target.name + ".mask.png"), encode_png(pred))
    return {**_record(item, "ok", None, result.seconds), **scores}


def _batches(items: list[SuiteItem], size: int) -> Iterator[list[SuiteItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_batch(method: Method, batch: list[SuiteItem], folder: Path) -> Iterator[dict[str, Any]]:
    """Records for a batch, one per item, whatever the method does (raise, skip keys, return junk)."""
    truths = {item.key: _load(item.mask)[..., 0] > 127 for item in batch}
    jobs = [Job(item.key, _load(item.degraded), truths[item.key] if method.oracle_mask else None) for item in batch]
    by_key = {item.key: item for item in batch}
    results = method.restore_many(jobs)
    while True:
        try:  # only the method's own work: a damaged suite or a full disk while scoring is not the method's failure
            result = next(results)
        except StopIteration:
            break
        except Exception as exc:  # the method broke down for the whole batch; its other images still get their turn
            error = f"{type(exc).__name__}: {exc}"
            yield from (_error_record(item, error) for item in by_key.values())
            return
        item = by_key.pop(result.key, None)
        if item is None:
            continue  # a key the method made up, or one it already answered
        if result.error is not None:
            yield _error_record(item, result.error, result.seconds)
            continue
        try:
            yield _score(method, item, result, truths[item.key], folder)
        except ValueError as exc:  # an unusable output (wrong shape, missing mask): that image fails
            yield _error_record(item, str(exc), result.seconds)
    for item in by_key.values():
        yield _error_record(item, "method returned no result for this image")


def run_method(
    suite: Suite,
    method: Method,
    spec: str,
    out: Path,
    *,
    retry_failed: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> RunCounts:
    """Score one method on every suite item not yet recorded in out/<method.name>/results.jsonl."""
    name = check_name(method.name)
    _check_folder(out, suite, [(name, spec)])
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "name": name,
        "spec": spec,
        "oracle_mask": bool(method.oracle_mask),
        "predicts_mask": bool(method.predicts_mask),
        "suite": _suite_info(suite),
    }
    atomic_write(folder / METHOD_FILE, (json.dumps(info, indent=2) + "\n").encode())
    path = folder / RESULTS_FILE
    records, torn = read_records(path)
    if retry_failed:
        kept = {k: r for k, r in records.items() if r.get("status") == "ok"}
        torn, records = torn or len(kept) < len(records), kept
    if torn:  # rewrite without the torn line (or the failed ones), so appending starts on a fresh line
        atomic_write(path, "".join(json_line(r) for r in records.values()).encode())
    todo = [item for item in suite.items if item.key not in records]
    counts = {"ok": 0, "failed": 0}
    with open(path, "a", encoding="utf-8") as fh, tqdm(total=len(todo), desc=name, disable=not progress) as bar:
        for batch in _batches(todo, batch_size):
            for record in _run_batch(method, batch, folder):
                fh.write(json_line(record))
                fh.flush()
                counts[record["status"]] += 1
                bar.update()
    return RunCounts(name, len(suite.items) - len(todo), counts["ok"], counts["failed"])


def run(
    suite: Suite,
    methods: Sequence[Method],
    out: Path,
    specs: Sequence[str] | None = None,
    *,
    retry_failed: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> list[RunCounts]:
    """Run each method over the suite into `out` (resuming), then rewrite out/summary.csv.

    `specs` are the command-line specs the methods were made from (recorded in method.json; default: their names).
    Both folder checks run before any method starts, so a refused folder costs nothing.
    """
    specs = list(specs) if specs is not None else [m.name for m in methods]
    if len(specs) != len(methods):
        raise ValueError(f"{len(methods)} methods but {len(specs)} specs")
    names = [check_name(m.name) for m in methods]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise RunError(f"method name(s) given twice: {', '.join(twice)} (use --name to tell them apart)")
    _check_folder(out, suite, list(zip(names, specs, strict=True)))
    counts = [
        run_method(suite, m, s, out, retry_failed=retry_failed, batch_size=batch_size, progress=progress)
        for m, s in zip(methods, specs, strict=True)
    ]
    write_summary(out)
    return counts


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary of a group of records: n (all recorded), failed, means over the ok ones, pooled mask scores.

    A score's mean counts only images that have it (psnr_in exists only where the mask is non-empty); None where no
    image has it. Mask scores come from the summed tp/fp/fn, i.e. pooled over every pixel of the group.
    """
    ok = [r for r in records if r.get("status") == "ok"]
    row: dict[str, Any] = {"n": len(records), "failed": len(records) - len(ok)}
    for key in score_keys(ok):
        values = [float(r[key]) for r in ok if _number(r.get(key))]
        row[key] = sum(values) / len(values) if values else None
    counted = [r for r in ok if all(_number(r.get(k)) for k in COUNT_KEYS)]
    if counted:
        sums = {k: int(sum(r[k] for r in counted)) for k in COUNT_KEYS}
        row.update(scores_from_counts(**sums), **sums)
    seconds = [float(r["seconds"]) for r in ok if _number(r.get("seconds"))]
    row["seconds"] = sum(seconds) / len(seconds) if seconds else None
    return row


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def score_keys(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per-image scores present in `records`: MEAN_KEYS first, then any other numeric key, sorted."""
    skip = set(_RECORD_KEYS) | set(POOLED_KEYS) | set(COUNT_KEYS)
    extra = {k for r in records for k, v in r.items() if k not in skip and _number(v)} - set(MEAN_KEYS)
    present = {k for r in records for k in r}
    return [k for k in MEAN_KEYS if k in present] + sorted(extra)


def track_order(results: Sequence[MethodResults]) -> list[str]:
    """Tracks in the order the suite lists them (results lines follow suite order)."""
    tracks: dict[str, None] = {}
    for mr in results:
        for record in mr.records.values():
            tracks.setdefault(str(record.get("track")), None)
    return list(tracks)


def summary_rows(results: Sequence[MethodResults]) -> list[dict[str, Any]]:
    """One aggregate row per method x track x level, methods by name, tracks in suite order, levels ascending."""
    tracks = track_order(results)
    rows = []
    for mr in results:
        groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for record in mr.records.values():
            group = (tracks.index(str(record.get("track"))), int(record.get("level", 0)))
            groups.setdefault(group, []).append(record)
        for (t, level), group in sorted(groups.items()):
            head = {"method": mr.name, "track": tracks[t], "level": level, "oracle_mask": mr.info.get("oracle_mask")}
            rows.append({**head, **aggregate(group)})
    return rows


def write_summary(out: Path) -> Path:
    """Write out/summary.csv (atomically) over every method folder present; returns its path."""
    results = load_results(out)
    extra = [k for k in score_keys([r for mr in results for r in mr.records.values()]) if k not in MEAN_KEYS]
    columns = ["method", "track", "level", "n", "failed", "oracle_mask", *MEAN_KEYS, *extra]
    columns += [*POOLED_KEYS, *COUNT_KEYS, "seconds"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in summary_rows(results):
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    path = out / SUMMARY_FILE
    atomic_write(path, buffer.getvalue().encode())
    return path


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
