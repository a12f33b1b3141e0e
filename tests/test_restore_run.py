"""`restore run`: files and folders, names and modes kept, bad photos reported while the rest go on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from restore.cli import cli  # noqa: E402
from restore.config import model_config  # noqa: E402
from restore.export import build_networks, save_model  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = model_config("tiny")
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, config, build_networks(config), {})


def _run(*args: object) -> object:
    return CliRunner().invoke(cli, ["run", *map(str, args)], catch_exceptions=False)


def _photo(path: Path, pixels: np.ndarray, **save: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


def test_one_photo_default_output_and_mask(tmp_path: Path, weights: Path) -> None:
    source = _photo(tmp_path / "old.jpg", data.chelsea()[:120, :150])
    result = _run(source, "--weights", weights, "--save-mask", tmp_path / "mask.png", "--scratches", "on")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "old-restored.png") as out, Image.open(tmp_path / "mask.png") as mask:
        assert out.mode == "RGB" and out.size == (150, 120)
        assert mask.mode == "L" and mask.size == (150, 120) and set(np.unique(np.asarray(mask))) <= {0, 255}


def test_gray_stays_gray_and_exif_orientation_applies(tmp_path: Path, weights: Path) -> None:
    gray = _photo(tmp_path / "gray.png", data.camera()[:96, :64])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: viewers show it 64 wide, 80 high
    rotated = _photo(tmp_path / "rotated.jpg", data.astronaut()[:64, :80], exif=exif)
    for source, size, mode in ((gray, (64, 96), "L"), (rotated, (64, 80), "RGB")):
        out = tmp_path / f"{source.stem}-out.png"
        assert _run(source, "--out", out, "--weights", weights).exit_code == 0
        with Image.open(out) as image:
            assert (image.mode, image.size) == (mode, size)


def test_alpha_is_dropped_with_a_warning(tmp_path: Path, weights: Path) -> None:
    rgba = np.dstack([data.astronaut()[:64, :64], np.full((64, 64), 128, np.uint8)])
    source = _photo(tmp_path / "alpha.png", rgba)
    result = CliRunner().invoke(cli, ["run", str(source), "--weights", str(weights)])
    assert result.exit_code == 0
    assert "warning:" in result.output and "transparency dropped" in result.output
    with Image.open(tmp_path / "alpha-restored.png") as image:
        assert image.mode == "RGB"


def test_folder_with_a_corrupt_photo(tmp_path: Path, weights: Path) -> None:
    scans = tmp_path / "scans"
    _photo(scans / "a.png", data.astronaut()[:64, :96])
    _photo(scans / "family" / "b.jpg", data.coffee()[:80, :64])
    _photo(scans / "family" / "b.png", data.coffee()[:40, :64])
    (scans / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (scans / "notes.txt").write_text("not a photo")
    out = tmp_path / "restored"
    result = CliRunner().invoke(cli, ["run", str(scans), "--out", str(out), "--weights", str(weights), "-q"])
    assert result.exit_code == 1
    assert "restored 3, skipped 0 (already done), failed 1" in result.output
    assert f"error: {scans / 'broken.jpg'}:" in result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a.png", "family/b.jpg.png", "family/b.png.png"]
    with Image.open(out / "family" / "b.jpg.png") as image:
        assert image.size == (64, 80)
    before = (out / "a.png").stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["run", str(scans), "--out", str(out), "--weights", str(weights), "-q"])
    assert "restored 0, skipped 3 (already done), failed 1" in again.output
    assert (out / "a.png").stat().st_mtime_ns == before
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.jpg"], "--out must be a .png file"),
        (["--weights", "missing.safetensors"], "no such model file"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"], "device"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    source = _photo(tmp_path / "p.png", data.astronaut()[:32, :32])
    result = CliRunner().invoke(cli, ["run", str(source), *args], catch_exceptions=False)
    assert result.exit_code == 1
    assert message in result.output and result.output.strip().count("\n") == 0
