"""The benchmark runner: scores against the suite, resumes without recomputing, records failures, refuses mixing."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from degrade.bench.methods import Job, Method, Output, Result, get_method
from degrade.bench.metrics import scores_from_counts
from degrade.bench.runner import RESULTS_FILE, RunError, check_name, load_results, read_records, run
from degrade.bench.suite import Suite, make_suite, open_suite
from degrade.sources import load_image, open_source

#: A suite small enough for tests: 2 photos at 40 px; a mixed track (1 level, masks often empty at this size) and a
#: holes track (2 levels, every mask non-empty).
TINY_SUITE = """
name = "tiny-v1"
seed = 3
[images]
count = 2
size = 40
[tracks.mixed.levels.1]
base = "old-photo"
[tracks.holes.levels.1.stages.damage.ops.holes]
count = [1, 2]
size = [0.02, 0.05]
[tracks.holes.levels.2.stages.damage.ops.holes]
count = [2, 4]
size = [0.05, 0.12]
"""


def make_tiny_suite(photo_dir: Path, folder: Path) -> Suite:
    definition = folder / "tiny.toml"
    definition.write_text(TINY_SUITE)
    return make_suite(definition, open_source(str(photo_dir)), folder / "suite")


class Probe(Method):
    """Returns the input unchanged, except on the keys in `fail`, where it raises; remembers every key it was given.

    With `predicts`, it is an oracle that "predicts" the true mask plus the top rows (2 rows for every other image,
    12 for the rest), so images differ in false positives and none of their true pixels is missed.
    """

    def __init__(self, name: str, fail: Iterable[str] = (), predicts: bool = False) -> None:
        self.name, self.fail, self.seen = name, set(fail), []
        self.oracle_mask = self.predicts_mask = predicts

    def restore_many(self, jobs: Iterable[Job]) -> Iterator[Result]:
        for job in jobs:
            self.seen.append(job.key)
            self.key = job.key
            yield from super().restore_many([job])

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        if self.key in self.fail:
            raise RuntimeError(f"boom on {self.key}")
        if not self.predicts_mask:
            return Output(image.copy())
        predicted = mask.copy()
        predicted[: 2 + 10 * (len(self.seen) % 2 == 0)] = True
        return Output(image.copy(), predicted)


class Broken(Method):
    """A method whose batch call itself raises before yielding anything."""

    name = "broken"

    def restore_many(self, jobs: Iterable[Job]) -> Iterator[Result]:
        raise OSError("model file vanished")
        yield  # a generator, as restore_many is


class Sloppy(Method):
    """Overrides restore_many and gets it wrong: a tiny output for the first job, nothing for the second, and a
    result for a key nobody asked about."""

    name = "sloppy"

    def restore_many(self, jobs: Iterable[Job]) -> Iterator[Result]:
        first, *_ = jobs
        yield Result("made/up/key", Output(first.image), 0.1)
        yield Result(first.key, Output(np.zeros((2, 2, 3), np.uint8)), 0.1)


@pytest.fixture(scope="module")
def suite(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_tiny_suite(photo_dir, tmp_path_factory.mktemp("bench-run"))


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / RESULTS_FILE).read_text().splitlines()]


def test_identity_scores_equal_the_suite_input_scores(suite: Suite, tmp_path: Path) -> None:
    (counts,) = run(suite, [get_method("identity")], tmp_path)
    assert (counts.ok, counts.failed, counts.skipped) == (len(suite.items), 0, 0)
    records = {r["key"]: r for r in lines(tmp_path / "identity")}
    assert list(records) == [item.key for item in suite.items]
    for item in suite.items:
        record = records[item.key]
        assert record["status"] == "ok" and record["error"] is None
        assert (record["track"], record["level"], record["id"]) == (item.track, item.level, item.id)
        for key, value in item.input.items():  # the same metric on the same pixels: exactly equal
            assert record[key] == value, (item.key, key)
        output, _ = load_image(tmp_path / "identity" / "outputs" / f"{item.key}.png")
        np.testing.assert_array_equal(output, load_image(item.degraded)[0])
    info = json.loads((tmp_path / "identity" / "method.json").read_text())
    assert info["spec"] == "identity" and info["oracle_mask"] is False
    assert info["suite"] == {"name": "tiny-v1", "checksum": suite.checksum, "root": str(suite.root.resolve())}


def test_rerun_skips_every_recorded_image(suite: Suite, tmp_path: Path) -> None:
    first = Probe("probe")
    run(suite, [first], tmp_path, batch_size=4)
    assert first.seen == [item.key for item in suite.items]
    again = Probe("probe")
    (counts,) = run(suite, [again], tmp_path)
    assert again.seen == []
    assert (counts.ok, counts.failed, counts.skipped) == (0, 0, len(suite.items))
    assert len(lines(tmp_path / "probe")) == len(suite.items)


def test_a_crash_fails_that_image_only_and_retry_failed_redoes_it(suite: Suite, tmp_path: Path) -> None:
    bad = suite.items[1].key
    method = Probe("flaky", fail=[bad])
    (counts,) = run(suite, [method], tmp_path, batch_size=2)
    assert (counts.ok, counts.failed) == (len(suite.items) - 1, 1)
    records = {r["key"]: r for r in lines(tmp_path / "flaky")}
    assert records[bad]["status"] == "failed"
    assert records[bad]["error"] == f"RuntimeError: boom on {bad}"
    assert "psnr" not in records[bad]
    assert not (tmp_path / "flaky" / "outputs" / f"{bad}.png").exists()
    assert all(r["status"] == "ok" for k, r in records.items() if k != bad)

    kept = Probe("flaky")
    run(suite, [kept], tmp_path)
    assert kept.seen == []  # a failure is a result: not retried unless asked

    retried = Probe("flaky")
    (counts,) = run(suite, [retried], tmp_path, retry_failed=True)
    assert retried.seen == [bad]
    assert (counts.ok, counts.failed, counts.skipped) == (1, 0, len(suite.items) - 1)
    final = lines(tmp_path / "flaky")
    assert len(final) == len(suite.items) and all(r["status"] == "ok" for r in final)


def test_a_method_that_breaks_down_fails_its_images_and_the_next_method_runs(suite: Suite, tmp_path: Path) -> None:
    after = Probe("after")
    broken, ok = run(suite, [Broken(), after], tmp_path, batch_size=4)
    assert (broken.ok, broken.failed) == (0, len(suite.items))
    assert {r["error"] for r in lines(tmp_path / "broken")} == {"OSError: model file vanished"}
    assert ok.ok == len(suite.items) and after.seen == [item.key for item in suite.items]


def test_unusable_or_missing_results_fail_their_images(suite: Suite, tmp_path: Path) -> None:
    (counts,) = run(suite, [Sloppy()], tmp_path, batch_size=2)
    assert (counts.ok, counts.failed) == (0, len(suite.items))
    records = lines(tmp_path / "sloppy")
    assert [r["key"] for r in records] == [item.key for item in suite.items]  # the made-up key is ignored
    shape = load_image(suite.items[0].clean)[0].shape
    assert records[0]["error"] == f"output is (2, 2, 3) uint8, expected {shape} uint8"
    assert records[1]["error"] == "method returned no result for this image"


def test_a_damaged_suite_file_stops_the_run_instead_of_failing_the_method(suite: Suite, tmp_path: Path) -> None:
    copy = shutil.copytree(suite.root, tmp_path / "suite")
    (copy / suite.items[0].key / "clean.png").write_bytes(b"not a png")
    with pytest.raises(RunError, match=r"clean\.png: .*run degrade-bench verify"):
        run(open_suite(copy), [Probe("probe")], tmp_path / "results")
    assert lines(tmp_path / "results" / "probe") == []


def test_a_torn_last_line_is_dropped_and_that_image_redone(suite: Suite, tmp_path: Path) -> None:
    run(suite, [Probe("probe")], tmp_path)
    path = tmp_path / "probe" / RESULTS_FILE
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # a run killed while writing the last line
    records, torn = read_records(path)
    assert torn and len(records) == len(suite.items) - 1

    again = Probe("probe")
    (counts,) = run(suite, [again], tmp_path)
    assert again.seen == [suite.items[-1].key]
    assert counts.ok == 1
    assert [r["key"] for r in lines(tmp_path / "probe")] == [item.key for item in suite.items]


def test_a_damaged_line_before_the_last_is_refused(suite: Suite, tmp_path: Path) -> None:
    run(suite, [Probe("probe")], tmp_path)
    path = tmp_path / "probe" / RESULTS_FILE
    rows = path.read_text().splitlines()
    rows[1] = rows[1][:20]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(RunError, match=r"results\.jsonl:2: not a results record"):
        run(suite, [Probe("probe")], tmp_path)


def test_refuses_results_of_another_suite_or_another_spec(suite: Suite, tmp_path: Path) -> None:
    run(suite, [get_method("identity")], tmp_path)
    with pytest.raises(RunError, match=r"method 'identity' was run as 'identity', not 'nlm'"):
        run(suite, [get_method("nlm", name="identity")], tmp_path, ["nlm"])

    path = tmp_path / "identity" / "method.json"
    info = json.loads(path.read_text())
    info["suite"]["checksum"] = "0" * 64
    path.write_text(json.dumps(info))
    with pytest.raises(RunError, match=r"results for suite 'tiny-v1' checksum '0{64}', not 'tiny-v1' .*another --out"):
        run(suite, [get_method("nlm")], tmp_path)  # a new method too: one results folder holds one suite
    assert not (tmp_path / "nlm").exists()


def test_names_must_be_folder_names_and_unique(suite: Suite, tmp_path: Path) -> None:
    for bad in ("../up", ".hidden", "a/b", ""):
        with pytest.raises(RunError, match="cannot name a results folder"):
            check_name(bad)
    with pytest.raises(RunError, match="given twice: probe"):
        run(suite, [Probe("probe"), Probe("probe")], tmp_path)


def test_summary_csv_groups_means_and_pools_mask_scores(suite: Suite, tmp_path: Path) -> None:
    bad = suite.items[-1].key
    run(suite, [get_method("identity"), Probe("oracle-rows", fail=[bad], predicts=True)], tmp_path)
    with open(tmp_path / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "method", "track", "level", "n", "failed", "oracle_mask",
        "psnr", "ssim", "psnr_y", "ssim_y", "psnr_in", "ssim_in", "psnr_out", "ssim_out",
        "precision", "recall", "f1", "iou", "tp", "fp", "fn", "seconds",
    ]  # fmt: skip
    groups = [(r["method"], r["track"], r["level"]) for r in rows]
    assert groups == [
        (m, t, lv) for m in ("identity", "oracle-rows") for t, lv in (("mixed", "1"), ("holes", "1"), ("holes", "2"))
    ]

    results = {mr.name: mr for mr in load_results(tmp_path)}
    for row in rows:
        records = [
            r
            for r in results[row["method"]].records.values()
            if (r["track"], str(r["level"])) == (row["track"], row["level"])
        ]
        ok = [r for r in records if r["status"] == "ok"]
        assert (int(row["n"]), int(row["failed"])) == (len(records), len(records) - len(ok))
        assert row["oracle_mask"] == ("true" if row["method"] == "oracle-rows" else "false")
        assert float(row["psnr"]) == pytest.approx(np.mean([r["psnr"] for r in ok]), rel=1e-5)
        in_mask = [r["psnr_in"] for r in ok if "psnr_in" in r]  # only images with damage count
        assert (row["psnr_in"] == "") == (not in_mask)
        if in_mask:
            assert float(row["psnr_in"]) == pytest.approx(np.mean(in_mask), rel=1e-5)
        if row["method"] == "identity":
            assert row["f1"] == row["tp"] == ""
            continue
        tp, fp, fn = (sum(r[k] for r in ok) for k in ("tp", "fp", "fn"))
        assert (int(row["tp"]), int(row["fp"]), int(row["fn"])) == (tp, fp, fn)
        assert fn == 0 and fp > 0  # the probe's prediction covers the truth and extra rows
        assert float(row["f1"]) == pytest.approx(scores_from_counts(tp, fp, fn)["f1"], rel=1e-5)
        assert float(row["f1"]) == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-5)
    holes = next(r for r in rows if r["method"] == "oracle-rows" and (r["track"], r["level"]) == ("holes", "1"))
    per_image = [r["f1"] for r in results["oracle-rows"].records.values() if r["key"].startswith("holes/1/")]
    assert abs(float(holes["f1"]) - np.mean(per_image)) > 1e-3  # pooled over pixels, not a mean of per-image F1
    predicted = load_image(tmp_path / "oracle-rows" / "outputs" / f"{suite.items[2].key}.mask.png")[0][..., 0]
    assert set(np.unique(predicted)) == {0, 255} and predicted[:2].all()
