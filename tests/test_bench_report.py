"""Benchmark reports (self-contained HTML, Markdown leaderboard) and the degrade-bench command line end to end."""

from __future__ import annotations

import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_bench_run import TINY_SUITE, Probe, make_tiny_suite

from degrade.bench.cli import main
from degrade.bench.methods import get_method
from degrade.bench.report import ReportError, write_html, write_markdown
from degrade.bench.runner import run
from degrade.bench.suite import Suite

#: Real methods of every kind: blind, oracle-mask, mask-predicting, and one failing with markup in its error.
METHODS = ("identity", "nlm", "telea", "telea-detect")
HOSTILE = "<script>alert(1)</script>"


class Hostile(Probe):
    """Fails on every image with an error message that would inject a script if the report did not escape it."""

    def restore(self, image, mask):
        raise RuntimeError(HOSTILE)


@pytest.fixture(scope="module")
def bench(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Suite, Path]:
    folder = tmp_path_factory.mktemp("bench-report")
    suite = make_tiny_suite(photo_dir, folder)
    results = folder / "results"
    run(suite, [*(get_method(m) for m in METHODS), Hostile("hostile")], results)
    return suite, results


def test_html_is_self_contained_and_shows_every_method(bench: tuple[Suite, Path], tmp_path: Path) -> None:
    suite, results = bench
    page = write_html(results, tmp_path / "report.html", examples=2).read_text()
    assert "http" not in page  # no external stylesheet, script, font or image, not even an SVG namespace
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!data:)[^"'\s>]""", page)
    assert suite.checksum in page and "tiny-v1" in page
    for name in (*METHODS, "hostile"):
        assert f">{name}" in page
    assert "telea \u2020" in page and "telea-detect \u2020" not in page  # the oracle is marked, the detector not
    assert HOSTILE not in page and "RuntimeError: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('<table class="sortable">') == 2 * 2  # per track: all levels, by level
    charts = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(charts) == 3  # PSNR for mixed; PSNR and in-mask PSNR for holes (mixed masks are empty at 40 px)
    for chart in charts:
        ET.fromstring(chart)  # well-formed
    assert 'aria-label="holes: PSNR inside the damage mask (dB)"' in page
    # 2 examples per track (one per level for holes): input, 4 methods (+1 predicted mask), target, true mask
    assert page.count("<h4>") == 4
    assert len(re.findall(r'<img src="data:image/(?:jpeg|png);base64,[A-Za-z0-9+/=]+"', page)) == 4 * (3 + 5)
    assert page.count('class="failed">failed: RuntimeError') == 4
    assert "<h2>Failures (6)</h2>" in page and page.count("<td>hostile</td>") == 6


def test_html_without_the_suite_leaves_out_the_grids_and_says_why(bench: tuple[Suite, Path], tmp_path: Path) -> None:
    suite, results = bench
    moved = tmp_path / "results"
    shutil.copytree(results, moved)
    for info_path in moved.glob("*/method.json"):
        info = json.loads(info_path.read_text())
        info["suite"]["root"] = str(tmp_path / "gone")
        info_path.write_text(json.dumps(info))
    page = write_html(moved, tmp_path / "report.html").read_text()
    assert "No image grids" in page and "suite.json: not found" in page and "<img" not in page
    assert all(f">{name}" in page for name in METHODS)
    page = write_html(moved, tmp_path / "again.html", suite=suite.root).read_text()  # told where it is
    assert "<img" in page
    with pytest.raises(ReportError, match="not found"):
        write_html(moved, tmp_path / "x.html", suite=tmp_path / "gone")


def test_markdown_ranks_each_track_by_mean_psnr(bench: tuple[Suite, Path], tmp_path: Path) -> None:
    _, results = bench
    text = write_markdown(results, tmp_path / "leaderboard.md").read_text()
    assert text.startswith("# Leaderboard: tiny-v1\n")
    sections = dict(re.findall(r"^## Track (\S+)\n\n(.*?)(?:\n\n|\Z)", text, flags=re.S | re.M))
    assert list(sections) == ["mixed", "holes"]
    for track, table in sections.items():
        head, _, *rows = [line.strip("|").split("|") for line in table.strip().splitlines()]
        head = [h.strip() for h in head]
        assert head[:3] == ["rank", "method", "PSNR"] and head[-2:] == ["failed", "s/img"]
        if track == "holes":
            assert head[3:7] == ["PSNR by level 1/2", "SSIM", "PSNR in mask", "F1"]
        cells = [dict(zip(head, (c.strip() for c in row), strict=True)) for row in rows]
        assert [c["rank"] for c in cells] == [str(i) for i in range(1, len(cells) + 1)]
        assert sorted(c["method"] for c in cells) == sorted(
            ["hostile", "identity", "nlm", "telea \u2020", "telea-detect"]
        )
        scored = [float(c["PSNR"]) for c in cells if c["method"] != "hostile"]
        assert scored == sorted(scored, reverse=True)
        assert cells[-1]["method"] == "hostile" and cells[-1]["PSNR"] == "\u2013"
        assert cells[-1]["failed"] == ("2/2" if track == "mixed" else "4/4")
    assert "<script>" not in text


def test_report_refuses_a_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no method results"):
        write_html(tmp_path, tmp_path / "report.html")


def test_command_line_end_to_end(photo_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    definition = tmp_path / "tiny.toml"
    definition.write_text(TINY_SUITE)
    suite, results = tmp_path / "suite", tmp_path / "results"

    made = runner.invoke(main, ["make", "--suite", str(definition), "--src", str(photo_dir), "--out", str(suite), "-q"])
    assert made.exit_code == 0, made.output
    manifest = json.loads((suite / "suite.json").read_text())
    checksum = manifest["checksum"]
    assert made.output == (
        f"suite tiny-v1: 6 images, checksum {checksum} in {suite}\npixel checksum {manifest['pixel_checksum']}\n"
    )
    verified = runner.invoke(main, ["verify", str(suite)])
    assert (verified.exit_code, verified.output) == (0, f"OK tiny-v1 {checksum}\n")

    script = tmp_path / "negate.py"
    script.write_text(
        "import sys\nfrom PIL import Image, ImageOps\n"
        "ImageOps.invert(Image.open(sys.argv[1]).convert('RGB')).save(sys.argv[2])\n"
    )
    command = [
        "run",
        str(suite),
        "--method",
        "identity",
        "--method",
        f"cmd:{sys.executable} {script} {{input}} {{output}}",
    ]
    command += ["--name", "negate", "--out", str(results), "-q"]
    ran = runner.invoke(main, command)
    assert ran.exit_code == 0, ran.output
    assert "identity: 6 ok, 0 failed, 0 skipped (already done)" in ran.output
    assert "negate: 6 ok, 0 failed, 0 skipped (already done)" in ran.output
    again = runner.invoke(main, command)
    assert "negate: 0 ok, 0 failed, 6 skipped (already done)" in again.output

    reported = runner.invoke(main, ["report", str(results), "--out", str(tmp_path / "report.html")])
    assert reported.exit_code == 0, reported.output
    page = (tmp_path / "report.html").read_text()
    board = (tmp_path / "leaderboard.md").read_text()
    for name in ("identity", "negate"):
        assert f">{name}" in page and f"| {name} |" in board
    assert "http" not in page
    assert board.index("| identity |") < board.index("| negate |")  # the inverted image scores far lower

    wrong = runner.invoke(
        main, ["run", str(suite), "--method", "identity", "--name", "a", "--name", "b", "--out", str(results)]
    )
    assert wrong.exit_code == 1 and "2 --name for 1 --method" in wrong.output
    unknown = runner.invoke(main, ["run", str(suite), "--method", "nope", "--out", str(results)])
    assert unknown.exit_code == 1 and "unknown method 'nope'" in unknown.output

    degraded = next(suite.glob("holes/2/*/degraded.png"))
    degraded.write_bytes(degraded.read_bytes() + b"\0")
    broken = runner.invoke(main, ["verify", str(suite)])
    assert broken.exit_code == 1
    assert f"modified: {degraded.relative_to(suite).as_posix()} (sha256 differs)" in broken.output

    listed = runner.invoke(main, ["methods"])
    assert listed.exit_code == 0 and {"identity", "telea", "telea-detect"} <= set(listed.output.split())
    assert "old-photo-v1" in runner.invoke(main, ["suites"]).output.split()
