"""Benchmark suites: definitions validate, make renders an exact, resumable, checksummed folder, verify catches
changes, and every built-in suite renders on a real photo with the masks its families promise."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import small_photo
from PIL import Image

from degrade import replay
from degrade.bench.cli import main
from degrade.bench.metrics import image_scores
from degrade.bench.suite import (
    SuiteError,
    builtin_suites,
    load_definition,
    make_suite,
    open_suite,
    pixel_checksum,
    pixel_sha256,
    resolve_levels,
    suite_checksum,
    verify_suite,
)
from degrade.sources import load_image, open_source

TINY = """
name = "tiny-v1"
description = "test suite"
seed = 7

[images]
count = 3
size = 64

[tracks.mixed.levels.1]
base = "old-photo"

[tracks.holes.levels.1.stages.damage.ops.holes]
count = [1, 2]
size = [0.05, 0.1]

[tracks.holes.levels.2.stages.damage.ops.holes]
count = [3, 4]
size = [0.08, 0.15]
"""
LEVELS = [("mixed", 1), ("holes", 1), ("holes", 2)]


def write_photos(folder: Path, names: tuple[str, ...], short_side: int = 80) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(small_photo(name, short_side)).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny definition and a folder of three small real photos."""
    root = tmp_path_factory.mktemp("tiny")
    definition = root / "tiny.toml"
    definition.write_text(TINY, "utf-8")
    return definition, write_photos(root / "photos", ("astronaut", "chelsea", "coffee"))


@pytest.fixture(scope="module")
def made(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny suite, made once with one worker (tests that change it work on a copy)."""
    definition, photos = tiny
    out = tmp_path_factory.mktemp("made") / "suite"
    make_suite(definition, open_source(photos), out, jobs=1)
    return out


def copy_of(made: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made, tmp_path / "copy"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- definitions


def test_builtin_suites_load_and_validate() -> None:
    assert {"old-photo-v1", "bopbtl-v1"} <= set(builtin_suites())
    for name in builtin_suites():
        definition = load_definition(name)
        assert definition["name"] == name and definition["description"]
    shape = {t: len(d["levels"]) for t, d in load_definition("old-photo-v1")["tracks"].items()}
    assert shape == {"mixed": 1, "unstructured": 3, "scratches": 3, "holes": 3, "spots": 3}
    assert {t: len(d["levels"]) for t, d in load_definition("bopbtl-v1")["tracks"].items()} == {"bopbtl": 1}
    (_, _, bopbtl), *_ = resolve_levels(load_definition("bopbtl-v1"))
    assert bopbtl["name"] == "bopbtl"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seed = 7", "seed = 7\ncolour = 1"), "unknown key 'colour'"),
        (("[tracks.holes.levels.2", "[tracks.holes.levels.3"), "numbered 1, 2"),
        (("count = [3, 4]", "count = [3, 4]\nwobble = 2"), "unknown key 'wobble' for op 'holes'"),
        (('base = "old-photo"', 'base = "no-such-preset"'), "unknown preset"),
        (("size = 64", "size = 'big'"), "images.size must be an integer"),
        (("[tracks.mixed.", "[tracks.Mixed."), "lower case"),
    ],
)
def test_bad_definitions_are_refused_naming_the_file(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(*edit), "utf-8")
    with pytest.raises(SuiteError, match=message) as info:
        load_definition(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(SuiteError, match="old-photo-v1"):
        load_definition("no-such-suite")


# --------------------------------------------------------------------------- make


def test_make_writes_the_documented_layout(made: Path) -> None:
    suite = open_suite(made)
    manifest = suite.manifest
    assert suite.name == "tiny-v1" and manifest["format"] == "patina-suite/1"
    assert not (made / "suite.partial.json").exists() and manifest["errors"] == []
    ids = sorted(f"{n}_r0" for n in ("astronaut", "chelsea", "coffee"))
    assert [(i.track, i.level, i.id) for i in suite.items] == [(t, lv, i) for t, lv in LEVELS for i in ids]
    on_disk = all_files(made)
    assert on_disk.pop("suite.json")
    assert manifest["files"] == on_disk  # every other file, with its sha256
    lines = "".join(f"{on_disk[rel]}  {rel}\n" for rel in sorted(on_disk))
    assert suite.checksum == hashlib.sha256(lines.encode()).hexdigest() == suite_checksum(on_disk)
    for item in suite.items:
        assert item.clean.is_absolute() and item.key == f"{item.track}/{item.level}/{item.id}"
        assert item.degraded == made / item.key / "degraded.png"
        clean, degraded = load_image(item.clean)[0], load_image(item.degraded)[0]
        mask = np.asarray(Image.open(item.mask))
        assert clean.shape == degraded.shape == (64, 64, 3) and mask.shape == (64, 64)
        assert set(np.unique(mask)) <= {0, 255} and not np.array_equal(clean, degraded)
        record = json.loads(item.record.read_text())
        np.testing.assert_array_equal(replay(record, clean).degraded, degraded)  # the record replays the item
        assert item.input == pytest.approx(image_scores(degraded, clean, mask))
        if item.track == "holes":
            assert mask.any() and "psnr_in" in item.input
    by_key = {i.key: load_image(i.clean)[0] for i in suite.items}
    for photo in ids:  # every level of a track degrades the same clean photo
        np.testing.assert_array_equal(by_key[f"holes/1/{photo}"], by_key[f"holes/2/{photo}"])


def test_make_is_the_same_bytes_with_two_workers(made: Path, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    definition, photos = tiny
    two = make_suite(definition, open_source(photos), tmp_path / "two", jobs=2)
    assert two.checksum == open_suite(made).checksum
    assert all_files(tmp_path / "two").keys() == all_files(made).keys()


def test_a_corrupt_photo_is_reported_and_skipped(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    definition, photos = tiny
    folder = Path(shutil.copytree(photos, tmp_path / "photos"))
    data = (folder / "coffee.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 2])  # a truncated PNG
    suite = make_suite(definition, open_source(folder), tmp_path / "suite")
    [error] = suite.manifest["errors"]
    assert error["ref"] == "broken.png" and "broken.png" in error["error"]
    assert {i.id for i in suite.items} == {"astronaut_r0", "chelsea_r0", "coffee_r0"}  # the others take its place
    assert verify_suite(tmp_path / "suite") == []


def test_small_photos_are_passed_over_not_enlarged(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    _, photos = tiny
    folder = Path(shutil.copytree(photos, tmp_path / "photos"))
    write_photos(folder, ("rocket",), short_side=40)
    definition = tmp_path / "four.toml"
    definition.write_text(TINY.replace("count = 3", "count = 4"), "utf-8")  # every photo is looked at
    suite = make_suite(definition, open_source(folder), tmp_path / "suite")
    assert suite.manifest["selection"] == {
        "photos": 3,
        "too_small": [{"id": "rocket", "ref": "rocket.png", "size": [60, 40]}],
    }
    assert "rocket_r0" not in {i.id for i in suite.items}


def test_rerun_resumes_without_rendering_again(made: Path, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    definition, photos = tiny
    out = copy_of(made, tmp_path)
    manifest = json.loads((out / "suite.json").read_text())
    (out / "suite.json").rename(out / "suite.partial.json")  # as if the run had been killed before the end
    damaged = out / "holes/2/chelsea_r0/degraded.png"
    damaged.write_bytes(b"not a png")
    (out / "holes/2/.degraded.png.123.tmp").write_bytes(b"left by a killed run")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    suite = make_suite(definition, open_source(photos), out)
    assert suite.manifest == manifest and verify_suite(out) == []
    redone = {p for p in stamps if p.exists() and p.stat().st_mtime_ns != stamps[p]}
    assert redone == {
        damaged,
        damaged.with_name("clean.png"),
        damaged.with_name("mask.png"),
        damaged.with_name("record.json"),
    }


def test_a_folder_holding_something_else_is_refused(made: Path, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    definition, photos = tiny
    out = copy_of(made, tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("seed = 7", "seed = 8"), "utf-8")
    with pytest.raises(SuiteError, match="holds another suite .*definition"):
        make_suite(other, open_source(photos), out)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(SuiteError, match="not empty"):
        make_suite(definition, open_source(photos), tmp_path / "stuff")


def test_the_rendering_versions_are_recorded_and_a_rerun_under_others_is_refused(
    made: Path, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2
    import PIL

    engine = json.loads((made / "suite.json").read_text())["engine"]
    assert engine["numpy"] == np.__version__ and engine["opencv"] == cv2.__version__
    assert engine["pillow"] == PIL.__version__
    definition, photos = tiny
    out = copy_of(made, tmp_path)
    monkeypatch.setattr("degrade.bench.suite.environment", lambda: {**engine, "opencv": "0.0.0"})
    with pytest.raises(SuiteError, match="holds another suite .*engine"):
        make_suite(definition, open_source(photos), out)


# --------------------------------------------------------------------------- verify and open


def test_verify_catches_modified_missing_and_extra_files(made: Path, tmp_path: Path) -> None:
    out = copy_of(made, tmp_path)
    assert verify_suite(out) == []
    degraded = out / "mixed/1/astronaut_r0/degraded.png"
    pixels = load_image(degraded)[0]
    pixels[0, 0] ^= 1  # one bit of one pixel
    Image.fromarray(pixels).save(degraded)
    (out / "holes/1/coffee_r0/mask.png").unlink()
    (out / "holes/1/notes.txt").write_text("extra")
    assert verify_suite(out) == [
        "missing: holes/1/coffee_r0/mask.png",
        "modified: mixed/1/astronaut_r0/degraded.png (sha256 differs)",
        "extra file: holes/1/notes.txt",
        "pixels differ: mixed/1/astronaut_r0/degraded.png",
    ]


def test_verify_catches_an_edited_file_list(made: Path, tmp_path: Path) -> None:
    out = copy_of(made, tmp_path)
    manifest = json.loads((out / "suite.json").read_text())
    rel = "holes/2/coffee_r0/clean.png"
    manifest["files"][rel] = "0" * 64
    (out / "suite.json").write_text(json.dumps(manifest))
    assert verify_suite(out) == [
        f"suite.json: checksum {manifest['checksum']} does not match its list of files",
        f"modified: {rel} (sha256 differs)",
    ]


def test_pixel_digests_are_recorded_and_recomputed_from_the_images(made: Path, tmp_path: Path) -> None:
    manifest = open_suite(made).manifest
    images = {rel for rel in manifest["files"] if rel.endswith(".png")}
    assert set(manifest["pixels"]) == images and len(images) == 3 * len(LEVELS) * 3
    for rel in images:
        pixels = np.asarray(Image.open(made / rel))  # RGB or one channel, as written
        assert manifest["pixels"][rel] == pixel_sha256(pixels)
    assert manifest["pixel_checksum"] == suite_checksum(manifest["pixels"]) == pixel_checksum(made)
    assert manifest["pixel_checksum"] != manifest["checksum"]
    legacy = copy_of(made, tmp_path)  # a suite made before pixel digests were recorded
    del manifest["pixels"], manifest["pixel_checksum"]
    (legacy / "suite.json").write_text(json.dumps(manifest))
    assert verify_suite(legacy) == [] and pixel_checksum(legacy) == open_suite(made).manifest["pixel_checksum"]


def test_verify_refuses_a_pixel_digest_of_no_image(made: Path, tmp_path: Path) -> None:
    """A digest no item names would enter the pixel checksum that `verify --expect` trusts, so it is a problem."""
    out = copy_of(made, tmp_path)
    manifest = json.loads((out / "suite.json").read_text())
    manifest["pixels"]["mixed/9/gone/clean.png"] = "0" * 64
    manifest["pixel_checksum"] = suite_checksum(manifest["pixels"])  # consistent with itself
    (out / "suite.json").write_text(json.dumps(manifest))
    assert verify_suite(out) == ["suite.json: pixel digest of mixed/9/gone/clean.png, which no item names"]


def test_another_png_encoder_keeps_the_pixel_checksum_and_verify_expect_tells_which_matched(
    made: Path, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    definition, photos = tiny
    mine = open_suite(made)

    def other_build(image: np.ndarray) -> bytes:  # same pixels, other bytes: no compression
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        return cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1].tobytes()

    monkeypatch.setattr("degrade.bench.suite.encode_png", other_build)
    theirs = make_suite(definition, open_source(photos), tmp_path / "theirs")
    assert theirs.checksum != mine.checksum and verify_suite(tmp_path / "theirs") == []
    assert theirs.manifest["pixel_checksum"] == mine.manifest["pixel_checksum"]
    runner = CliRunner()
    same_files = runner.invoke(main, ["verify", str(made), "--expect", mine.checksum.upper()])
    assert (same_files.exit_code, same_files.output) == (0, f"OK tiny-v1 {mine.checksum}\n")
    same_pixels = runner.invoke(main, ["verify", str(tmp_path / "theirs"), "--expect", mine.manifest["pixel_checksum"]])
    assert same_pixels.exit_code == 0 and "the same pixels as" in same_pixels.output
    cited_files = runner.invoke(main, ["verify", str(tmp_path / "theirs"), "--expect", mine.checksum])
    assert cited_files.exit_code == 1 and "not the suite cited" in cited_files.output  # not these bytes: cite both
    wrong = runner.invoke(main, ["verify", str(made), "--expect", "0" * 64])
    assert wrong.exit_code == 1 and f"not the suite cited as {'0' * 64}" in wrong.output


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "holes/../../x.png", "C:/x.png", "a\\..\\b.png"])
def test_manifest_paths_may_not_escape_the_suite(made: Path, tmp_path: Path, bad: str) -> None:
    out = copy_of(made, tmp_path)
    manifest = json.loads((out / "suite.json").read_text())
    manifest["items"][0]["clean"] = bad
    (out / "suite.json").write_text(json.dumps(manifest))
    with pytest.raises(SuiteError, match="suite.json"):
        open_suite(out)
    manifest["items"][0]["clean"] = "mixed/1/astronaut_r0/clean.png"
    manifest["files"][bad] = "0" * 64
    (out / "suite.json").write_text(json.dumps(manifest))
    with pytest.raises(SuiteError, match="suite.json"):
        verify_suite(out)


def test_open_refuses_a_folder_without_a_suite(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="suite.json: not found"):
        open_suite(tmp_path)
    (tmp_path / "suite.json").write_text("{")
    with pytest.raises(SuiteError, match="not a readable suite manifest"):
        verify_suite(tmp_path)
    (tmp_path / "suite.json").write_text('{"format": "patina-suite/1", "items": []}')
    with pytest.raises(SuiteError, match="malformed"):
        open_suite(tmp_path)


# --------------------------------------------------------------------------- the built-in suites


@pytest.mark.parametrize("name", ["old-photo-v1", "bopbtl-v1"])
def test_builtin_suite_renders_every_level(name: str, tmp_path: Path) -> None:
    """The real definitions through the real make, on one photo: one item per track level; the structured
    families' masks are non-empty and the unstructured track's empty."""
    photos = write_photos(tmp_path / "photos", ("astronaut",), short_side=256)
    suite = make_suite(name, open_source(photos), tmp_path / "suite")
    definition = load_definition(name)
    assert [(i.track, i.level) for i in suite.items] == [
        (track, int(level)) for track, table in definition["tracks"].items() for level in table["levels"]
    ]
    assert verify_suite(tmp_path / "suite") == []
    for item in suite.items:
        masked = np.count_nonzero(np.asarray(Image.open(item.mask)))
        assert item.input["psnr"] < 60, item.key  # every level degrades the photo
        if item.track in ("scratches", "holes", "spots"):
            assert masked > 0 and "psnr_in" in item.input, item.key
        if item.track == "unstructured":
            assert masked == 0 and "psnr_in" not in item.input, item.key
