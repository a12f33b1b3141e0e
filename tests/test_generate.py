"""End-to-end generation: layout, determinism across workers, replay, resume and bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import small_photo
from PIL import Image

from degrade import replay
from degrade.cli import gen
from degrade.dataset import DatasetError, Settings, generate
from degrade.ops import get_op
from degrade.ops.base import LABEL_NAMES
from degrade.presets import load_preset
from degrade.sources import open_source


def settings(preset: str = "old-photo", **kw) -> Settings:
    return Settings(json.dumps(load_preset(preset)), **kw)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted single-worker run: 5 photos x 2 repeats."""
    out = tmp_path_factory.mktemp("ref") / "pairs"
    summary = generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=1, progress=False)
    assert (summary.written, summary.skipped, summary.failed) == (10, 0, 0)
    return out


def test_layout_and_records(reference: Path) -> None:
    info = json.loads((reference / "dataset.json").read_text())
    assert info["complete"] and info["counts"] == {"samples": 10, "failed": 0}
    assert info["settings"]["seed"] == 7 and info["settings"]["preset"]["name"] == "old-photo"
    records = manifest(reference)
    assert len(records) == 10 and len({r["id"] for r in records}) == 10
    names = {
        kind: sorted(p.name for p in (reference / kind).iterdir()) for kind in ("clean", "degraded", "mask", "labels")
    }
    assert names["clean"] == names["degraded"] == names["mask"] == names["labels"]
    assert (reference / "errors.jsonl").read_text() == ""
    for record in records:
        w, h = record["size"]
        for kind, rel in record["files"].items():
            img = cv2.imread(str(reference / rel), cv2.IMREAD_UNCHANGED)
            assert img.shape[:2] == (h, w)
            assert img.ndim == (3 if kind in ("clean", "degraded") else 2)
        mask = cv2.imread(str(reference / record["files"]["mask"]), cv2.IMREAD_UNCHANGED)
        labels = cv2.imread(str(reference / record["files"]["labels"]), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(mask)) <= {0, 255} and set(np.unique(labels)) <= set(LABEL_NAMES)
        assert np.array_equal(mask > 0, labels > 0), "the mask is the union of the labelled damage"
        if not any(get_op(step["op"]).structured for step in record["ops"]):
            assert not mask.any()
        assert record["source"]["sha256"] and len(record["sha256"]) == 4


def test_same_bytes_with_two_workers(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=2, progress=False)
    assert tree_bytes(out) == tree_bytes(reference)


def test_seed_and_repeat_change_the_damage(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=8), jobs=1, progress=False)
    differing = sum(
        (out / f"degraded/{p.name}").read_bytes() != p.read_bytes() for p in (reference / "degraded").iterdir()
    )
    assert differing >= 8
    a, b = (reference / "degraded/coffee_r0.png").read_bytes(), (reference / "degraded/coffee_r1.png").read_bytes()
    assert a != b


def test_replay_from_manifest(reference: Path) -> None:
    for record in json.loads(json.dumps(manifest(reference))):
        clean = read_rgb(reference / record["files"]["clean"])
        again = replay(record, clean)
        assert np.array_equal(again.degraded, read_rgb(reference / record["files"]["degraded"]))
        assert np.array_equal(again.mask, cv2.imread(str(reference / record["files"]["mask"]), cv2.IMREAD_UNCHANGED))


def test_replay_refuses_wrong_image(reference: Path) -> None:
    record = manifest(reference)[0]
    with pytest.raises(ValueError, match="record says"):
        replay(record, np.zeros((3, 5, 3), np.uint8))


def test_rerun_skips_finished_samples(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    shutil.copytree(reference, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    summary = generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=1, progress=False)
    assert (summary.written, summary.skipped, summary.failed) == (0, 10, 0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    assert tree_bytes(out) == tree_bytes(reference)


def test_resume_repairs_a_crashed_run(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    """A crash leaves a torn manifest line, a half-written sample and a temp file; rerun repairs all."""
    out = tmp_path / "pairs"
    shutil.copytree(reference, out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    torn = json.loads(lines[7])
    (out / "manifest.jsonl").write_text("".join(lines[:7]) + lines[7][:40])
    for kind in ("degraded", "labels"):
        (out / torn["files"][kind]).unlink()  # sample 7 half-written: clean and mask only
    (out / "degraded/.x.png.123.tmp").write_bytes(b"partial")
    (out / "dataset.json").write_text(json.dumps({**json.loads((out / "dataset.json").read_text()), "complete": False}))
    summary = generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=2, progress=False)
    assert (summary.written, summary.skipped) == (3, 7)
    assert tree_bytes(out) == tree_bytes(reference)


def test_resume_drops_a_sample_whose_files_vanished(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    shutil.copytree(reference, out)
    (out / "degraded/rocket_r1.png").unlink()
    summary = generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=1, progress=False)
    assert summary.written == 1
    assert (out / "degraded/rocket_r1.png").read_bytes() == (reference / "degraded/rocket_r1.png").read_bytes()
    assert sorted(r["id"] for r in manifest(out)) == sorted(r["id"] for r in manifest(reference))


def test_incompatible_rerun_is_refused(reference: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    shutil.copytree(reference, out)
    with pytest.raises(DatasetError, match=r"settings\.seed: 7 before, 8 now"):
        generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=8), jobs=1, progress=False)
    assert tree_bytes(out) == tree_bytes(reference)


def test_library_versions_are_recorded_and_a_resume_under_others_is_refused(
    reference: Path, photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import PIL

    info = json.loads((reference / "dataset.json").read_text())
    assert info["libraries"] == {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}
    out = tmp_path / "pairs"
    shutil.copytree(reference, out)
    other = {**info["libraries"], "opencv": "0.0.0"}
    monkeypatch.setattr("degrade.dataset.libraries", lambda: other)
    with pytest.raises(DatasetError, match=rf"libraries\.opencv: \"{cv2.__version__}\" before, \"0\.0\.0\" now"):
        generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=1, progress=False)
    assert tree_bytes(out) == tree_bytes(reference)
    del info["libraries"]  # a dataset written before the versions were recorded resumes, and claims none
    (out / "dataset.json").write_text(json.dumps(info))
    monkeypatch.undo()
    summary = generate(open_source(str(photo_dir)), out, settings(repeats=2, seed=7), jobs=1, progress=False)
    assert summary.skipped == 10 and "libraries" not in json.loads((out / "dataset.json").read_text())


def test_bad_inputs_are_skipped_and_reported(photo_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(photo_dir, src)
    good = (src / "chelsea.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not an image")
    Image.new("RGB", (20, 12)).save(src / "tiny.png")
    out = tmp_path / "pairs"
    result = CliRunner().invoke(gen, ["--src", str(src), "--out", str(out), "--crop", "32", "-q"])
    assert result.exit_code == 0, result.output
    assert "written 5, skipped 0 (already done), failed 4" in result.output
    errors = {
        json.loads(line)["ref"]: json.loads(line)["error"] for line in (out / "errors.jsonl").read_text().splitlines()
    }
    assert set(errors) == {"truncated.jpg", "empty.png", "notes.jpg", "tiny.png"}
    assert "smaller than --crop 32" in errors["tiny.png"]
    for ref, message in errors.items():
        assert ref in message and "\n" not in message
    assert len(manifest(out)) == 5


def test_nothing_written_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = CliRunner().invoke(gen, ["--src", str(src), "--out", str(tmp_path / "pairs"), "-q"])
    assert result.exit_code != 0
    assert "no sample could be written" in result.output and "errors.jsonl" in result.output


def test_voc_split_end_to_end(tmp_path: Path) -> None:
    images = tmp_path / "VOCdevkit/VOC2012/JPEGImages"
    sets = tmp_path / "VOCdevkit/VOC2012/ImageSets/Main"
    images.mkdir(parents=True)
    sets.mkdir(parents=True)
    ids = {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003"]}
    for i, name in enumerate(ids["train"] + ids["val"]):
        Image.fromarray(small_photo(("astronaut", "coffee", "chelsea")[i])).save(images / f"{name}.jpg")
    for split, names in ids.items():
        (sets / f"{split}.txt").write_text("\n".join(names) + "\n")
    out = tmp_path / "pairs"
    args = [
        "--src",
        "voc",
        "--voc-root",
        str(tmp_path),
        "--split",
        "val",
        "--out",
        str(out),
        "--preset",
        "bopbtl",
        "-q",
    ]
    result = CliRunner().invoke(gen, args)
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in manifest(out)] == ["2008_000003_r0"]
    assert manifest(out)[0]["source"]["ref"] == "JPEGImages/2008_000003.jpg"


def test_cli_help_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(gen, ["--help"]).output
    for option in (
        "--src",
        "--out",
        "--preset",
        "--seed",
        "--repeats",
        "--size",
        "--crop",
        "--limit",
        "--jobs",
        "--voc-root",
        "--download",
    ):
        assert option in help_text
    cases = {
        ("--preset", "nope"): "unknown preset 'nope'",
        ("--src", "voc", "--out", str(tmp_path / "o")): "--src voc needs --voc-root",
        ("--src", str(tmp_path / "missing"), "--out", str(tmp_path / "o")): "missing",
        (
            "--src",
            "sample",
        ): "missing option --out",
        ("--download", "--src", "sample"): "--download fetches Pascal VOC",
    }
    for args, message in cases.items():
        result = runner.invoke(gen, list(args))
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert result.output.strip().count("\n") == 0, result.output


def test_cli_user_preset_unknown_key(tmp_path: Path) -> None:
    preset = tmp_path / "mine.toml"
    preset.write_text('base = "old-photo"\n[stages.scan.ops.jpeg]\nqualty = [10, 20]\n')
    result = CliRunner().invoke(gen, ["--preset", str(preset), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "unknown key 'qualty'" in result.output and "mine.toml" in result.output


def test_cli_show_preset() -> None:
    result = CliRunner().invoke(gen, ["--show-preset", "--preset", "bopbtl"])
    assert result.exit_code == 0
    assert json.loads(result.output)["stages"]["degrade"]["shuffle"] is True


@pytest.mark.slow
def test_killed_process_resumes_byte_identical(photo_dir: Path, tmp_path: Path) -> None:
    """SIGKILL a real run part-way, rerun the same command, compare with an uninterrupted run."""
    args = ["--src", str(photo_dir), "--repeats", "30", "--size", "96", "--seed", "3", "-q"]
    cmd = [sys.executable, "-c", "from degrade.cli import gen; gen()"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(cmd + args + ["--out", str(tmp_path / "ref"), "--jobs", "2"], check=True, env=env)
    out = tmp_path / "killed"
    proc = subprocess.Popen(cmd + args + ["--out", str(out), "--jobs", "2"], env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        manifest_path = out / "manifest.jsonl"
        if manifest_path.exists() and manifest_path.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "manifest.jsonl").read_bytes().count(b"\n") < 150, "the run finished before it could be killed"
    subprocess.run(cmd + args + ["--out", str(out), "--jobs", "1"], check=True, env=env)
    assert tree_bytes(out) == tree_bytes(tmp_path / "ref")


def test_unusable_output_folders_are_refused(photo_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    a_file = tmp_path / "pairs.txt"
    a_file.write_text("not a folder")
    result = runner.invoke(gen, ["--src", str(photo_dir), "--out", str(a_file), "-q"])
    assert result.exit_code != 0 and "pairs.txt' is a file" in result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text("{ half")
    result = runner.invoke(gen, ["--src", str(photo_dir), "--out", str(broken), "-q"])
    assert result.exit_code != 0 and "not a readable dataset description" in result.output
    assert (broken / "dataset.json").read_text() == "{ half"  # nothing overwritten


def test_size_crop_and_limit_are_applied_and_recorded(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    args = ["--src", str(photo_dir), "--out", str(out), "--size", "40", "--crop", "32", "--limit", "3", "-q"]
    result = CliRunner().invoke(gen, args)
    assert result.exit_code == 0, result.output
    records = manifest(out)
    assert len(records) == 3  # the first three sources in sorted order
    assert [r["source"]["ref"] for r in records] == sorted(r["source"]["ref"] for r in records)
    for record in records:
        w, h = record["resize"]
        assert min(w, h) == 40
        x, y, cw, ch = record["crop"]
        assert (cw, ch) == (32, 32) and 0 <= x <= w - 32 and 0 <= y <= h - 32
        assert record["size"] == [32, 32]
        assert read_rgb(out / record["files"]["degraded"]).shape == (32, 32, 3)
    # the crop position comes from each sample's own stream: a new seed moves it
    other = tmp_path / "other"
    CliRunner().invoke(gen, [*args[:3], str(other), *args[4:], "--seed", "1"])
    assert [r["crop"] for r in manifest(other)] != [r["crop"] for r in records]
    # a larger --limit extends the same dataset
    result = CliRunner().invoke(gen, [*args[:-2], "5", "-q"])
    assert result.exit_code == 0 and "written 2, skipped 3" in result.output
