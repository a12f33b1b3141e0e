"""Texture sets, their geometry and blend modes, the texture ops, `--textures`, and the texture generator."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from degrade.cli import gen
from degrade.ops import OPS
from degrade.ops.damage import MASK_THRESHOLD
from degrade.presets import load_preset
from degrade.textures import (
    BLEND_MODES,
    TextureError,
    blend_layer,
    bundled_folder,
    get_texture,
    load_texture,
    place,
    texture_set,
    use_textures,
)

ROOT = Path(__file__).resolve().parents[1]
SCRATCHES, PAPER = OPS["texture_scratches"], OPS["paper_texture"]


def lines(size: int = 64, seed: int = 0) -> np.ndarray:
    """A small scratch texture: a few bright lines on black, uint8."""
    img = np.zeros((size, size), np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x0, x1 = rng.integers(0, size, 2)
        cv2.line(img, (int(x0), 0), (int(x1), size - 1), 255, 2)
    return img


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """Scratch textures in several formats and a subfolder, a 16-bit paper texture, and files to skip."""
    folder = tmp_path / "tex"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    Image.fromarray(lines(seed=1)).save(folder / "scratch_a.png")
    Image.fromarray(lines(seed=2)).save(folder / "sub" / "b.jpg", quality=95)  # no prefix: a scratch texture
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = lines(seed=3)  # white scratches whose shape is in the alpha channel
    Image.fromarray(rgba).save(folder / "scratch_alpha.png")
    paper = (32768 + np.random.default_rng(0).normal(0, 2000, (48, 48))).astype(np.uint16)
    Image.fromarray(paper).save(folder / "paper_x.tif")
    Image.fromarray(lines()).save(folder / ".hidden" / "scratch_h.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


# --- texture sets and loading --------------------------------------------------------------------


def test_bundled_textures_load_and_are_non_trivial() -> None:
    tset = texture_set("")
    assert tset.source == "bundled" and tset.folder == bundled_folder()
    assert len(tset.of_kind("scratch")) >= 8 and len(tset.of_kind("paper")) >= 4
    for name in tset.of_kind("scratch"):
        px = tset.load(name).pixels
        assert px.dtype == np.float32 and px.shape == (1024, 1024)
        assert np.median(px) < 0.08, f"{name}: bright scratches on a dark background"
        assert 0.001 < (px > 0.5).mean() < 0.1, f"{name}: a fair number of bright scratch pixels"
    for name in tset.of_kind("paper"):
        px = tset.load(name).pixels
        assert abs(px.mean() - 0.5) < 0.01 and 0.03 < px.std() < 0.2, f"{name}: gray, 0.5 = neutral"


def test_bundled_folder_is_small_and_documented() -> None:
    folder = bundled_folder()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 4 * 2**20
    readme = (folder / "README.md").read_text()
    assert "MIT" in readme and "make_scratch_textures.py" in readme
    for path in folder.glob("*.png"):
        assert f"`{path.name}`" in readme
        assert Image.open(path).mode == "L"


def test_user_folder_loads(user_folder: Path) -> None:
    tset = texture_set(user_folder)
    assert tset.source == str(user_folder.resolve())
    assert tset.names["scratch"] == ("scratch_a.png", "scratch_alpha.png", "sub/b.jpg")
    assert tset.names["paper"] == ("paper_x.tif",)
    for name in tset.names["scratch"]:
        px = tset.load(name).pixels
        assert px.shape == (64, 64) and px.max() > 0.9 and np.median(px) < 0.05, name
    paper = tset.load("paper_x.tif").pixels
    assert abs(paper.mean() - 0.5) < 0.01 and len(np.unique(paper)) > 256  # 16 bits kept


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "texture folder not found"),
        (lambda d: d.mkdir() or (d / "a.txt").write_text("x"), "no texture images"),
        (lambda d: d.write_text("x"), "not a folder"),
    ],
    ids=["missing", "empty", "a-file"],
)
def test_unusable_folders_name_the_folder(tmp_path: Path, setup, message: str) -> None:
    folder = tmp_path / "textures"
    setup(folder)
    with pytest.raises(TextureError, match=message) as info:
        texture_set(folder)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


def test_missing_kind_and_corrupt_file_are_named(user_folder: Path) -> None:
    (user_folder / "paper_x.tif").unlink()
    with pytest.raises(TextureError, match="no paper textures"):
        texture_set(user_folder).of_kind("paper")
    bad = user_folder / "scratch_bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(TextureError, match="cannot read texture image") as info:
        load_texture(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(TextureError, match="scratch_bad.png"):
        use_textures(load_preset("old-photo"), user_folder)  # every image is decoded up front


# --- geometry and blending ----------------------------------------------------------------------------


def test_place_is_exact_at_identity_and_follows_turns_and_flips(user_folder: Path) -> None:
    texture = texture_set(user_folder).load("scratch_a.png")
    px = texture.pixels
    same = dict(centre=[0.5, 0.5], angle=0.0, scale=1.0)
    np.testing.assert_allclose(place(texture, (64, 64), **same), px, atol=1e-6)
    np.testing.assert_allclose(place(texture, (64, 64), **same, flip=True), px[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(
        place(texture, (64, 64), centre=[0.5, 0.5], angle=90.0, scale=1.0), np.rot90(px, k=-1), atol=1e-5
    )
    crop = place(texture, (16, 32), centre=[0.25, 0.75], angle=0.0, scale=1.0)  # a crop around (15.75, 47.25)
    np.testing.assert_allclose(crop[1:-1, 1:-1], cv2.getRectSubPix(px, (32, 16), (15.75, 47.25))[1:-1, 1:-1], atol=1e-5)


def test_place_small_reads_the_pyramid_and_warp_is_deterministic() -> None:
    texture = texture_set("").load("scratch_film_lines.png")
    small = place(texture, (256, 256), centre=[0.5, 0.5], angle=0.0, scale=0.25)
    area = cv2.resize(texture.pixels, (256, 256), interpolation=cv2.INTER_AREA)
    assert abs(float(small.mean()) - float(area.mean())) < 0.01  # no aliasing: thin lines keep their weight
    kw = dict(centre=[0.3, 0.6], angle=33.0, scale=0.7, warp=4.0, warp_cell=40.0)
    a, b = place(texture, (96, 128), **kw, seed=1), place(texture, (96, 128), **kw, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, place(texture, (96, 128), **kw, seed=2))
    assert not np.array_equal(a, place(texture, (96, 128), **{**kw, "warp": 0.0}))


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_blend_modes_match_their_formulas(mode: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.random((8, 6, 3), dtype=np.float32)
    formulas = {
        "screen": lambda b: 1 - (1 - a) * (1 - b),
        "lighten": lambda b: np.maximum(a, b),
        "add": lambda b: np.minimum(a + b, 1),
        "multiply": lambda b: a * b,
        "overlay": lambda b: np.where(a < 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
        "soft_light": lambda b: (1 - 2 * b) * a * a + 2 * a * b,
    }
    for layer in (np.array([0.9, 0.2, 0.5], np.float32), rng.random((8, 6, 1), dtype=np.float32)):
        np.testing.assert_allclose(blend_layer(a, layer, mode), formulas[mode](layer), atol=1e-6)


# --- the ops ----------------------------------------------------------------------------------------------------


def grey(shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.full((*shape, 3), 0.5, dtype=np.float32)


def test_scratch_params_record_the_texture_and_colours_fit_the_mode() -> None:
    img = grey()
    modes = set()
    for seed in range(40):
        params = SCRATCHES.sample(np.random.default_rng(seed), img.shape[:2], SCRATCHES.defaults)
        texture = get_texture(params["set"], params["texture"])
        assert params["set"] == "bundled" and params["sha256"] == texture.sha256
        out, mask = SCRATCHES.apply(img, params)
        modes.add(params["mode"])
        if params["mode"] in ("screen", "lighten", "add"):
            assert min(params["color"]) >= 0.8 and (out[mask] >= 0.5).all()
        elif params["mode"] == "multiply":
            assert max(params["color"]) <= 0.3 and (out[mask] <= 0.5).all()
    assert modes == {"screen", "lighten", "add", "multiply", "overlay"}


def test_scratch_mask_is_the_layer_opacity_threshold(user_folder: Path) -> None:
    cfg = {**SCRATCHES.defaults, "textures": str(user_folder), "modes": {"screen": 1.0}, "warp": [0.0, 0.0]}
    params = SCRATCHES.sample(np.random.default_rng(0), (64, 64), cfg)
    params.update(texture="scratch_a.png", sha256=texture_set(user_folder).load("scratch_a.png").sha256)
    params.update(centre=[0.5, 0.5], angle=0.0, scale=1.0, flip=False, opacity=1.0, color=[1.0, 1.0, 1.0])
    out, mask = SCRATCHES.apply(grey((64, 64)), params)
    px = texture_set(user_folder).load("scratch_a.png").pixels
    np.testing.assert_array_equal(mask, px >= MASK_THRESHOLD)
    assert out[px > 0.9].min() > 0.95  # screen with white at full opacity: the scratch is white


def test_replay_with_a_different_texture_is_refused(user_folder: Path) -> None:
    cfg = {**SCRATCHES.defaults, "textures": str(user_folder)}
    params = json.loads(json.dumps(SCRATCHES.sample(np.random.default_rng(0), (64, 64), cfg)))
    SCRATCHES.apply(grey((64, 64)), params)
    path = user_folder / params["texture"]
    Image.fromarray(lines(seed=9)).save(path, format="PNG")  # same name, other content
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime even on coarse clocks
    with pytest.raises(TextureError, match="differs from the one this record was made with"):
        SCRATCHES.apply(grey((64, 64)), params)
    path.unlink()
    with pytest.raises(TextureError, match="texture file not found"):
        SCRATCHES.apply(grey((64, 64)), params)


def test_paper_texture_is_subtle_grain_without_a_mask() -> None:
    assert not PAPER.structured
    img = grey((128, 160))
    for seed in range(6):
        params = PAPER.sample(np.random.default_rng(seed), img.shape[:2], PAPER.defaults)
        out = PAPER.apply(img, params)
        assert isinstance(out, np.ndarray) and out.shape == img.shape and out.dtype == np.float32
        change = np.abs(out - img)
        assert 0.0005 < change.mean() < 0.03 and change.max() < 0.15, (params["mode"], change.mean(), change.max())


# --- --textures ------------------------------------------------------------------------------------------------


def test_use_textures_points_texture_ops_at_the_folder(user_folder: Path) -> None:
    preset = load_preset("old-photo")
    preset["stages"]["extra"] = {
        "shuffle": False,
        "ops": {
            "pick": {
                "p": 1.0,
                "when": "any",
                "one_of": {
                    "tex": {"op": "texture_scratches", "weight": 1.0, "config": dict(SCRATCHES.defaults)},
                    "paper": {"op": "paper_texture", "weight": 1.0, "config": dict(PAPER.defaults)},
                },
            }
        },
    }
    before = json.dumps(preset)
    out = use_textures(preset, user_folder)
    assert json.dumps(preset) == before, "the input preset is not modified"
    choices = out["stages"]["extra"]["ops"]["pick"]["one_of"]
    assert choices["tex"]["config"]["textures"] == choices["paper"]["config"]["textures"] == str(user_folder.resolve())
    (user_folder / "paper_x.tif").unlink()
    kept = use_textures(preset, user_folder)["stages"]["extra"]["ops"]["pick"]["one_of"]
    assert kept["paper"]["config"]["textures"] == "", "a kind the folder lacks keeps the bundled set"
    plain = user_folder.parent / "plain.toml"
    plain.write_text("[stages.scan.ops.jpeg]\nquality = [60, 90]\n")
    with pytest.raises(TextureError, match="no texture ops"):
        use_textures(load_preset(plain), user_folder)


def test_cli_textures_end_to_end(user_folder: Path, tmp_path: Path) -> None:
    preset = tmp_path / "tex.toml"
    preset.write_text('name = "tex"\n[stages.damage.ops.scratches]\nop = "texture_scratches"\nopacity = [0.9, 1.0]\n')
    out = tmp_path / "pairs"
    args = ["--src", "sample", "--preset", str(preset), "--limit", "2", "--size", "64", "-q"]
    result = CliRunner().invoke(gen, [*args, "--out", str(out), "--textures", str(user_folder)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "dataset.json").read_text())
    config = info["settings"]["preset"]["stages"]["damage"]["ops"]["scratches"]["config"]
    assert config["textures"] == str(user_folder.resolve())
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        (step,) = record["ops"]
        assert step["params"]["set"] == str(user_folder.resolve())
        assert step["params"]["texture"] in texture_set(user_folder).names["scratch"]
    bad = CliRunner().invoke(gen, [*args, "--out", str(tmp_path / "o2"), "--textures", str(tmp_path / "nothing")])
    assert bad.exit_code != 0 and "--textures" in bad.output and "texture folder not found" in bad.output
    assert len(bad.output.strip().splitlines()) == 1, "one line, no usage dump"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    result = CliRunner().invoke(gen, [*args, "--out", str(tmp_path / "o3"), "--textures", str(empty)])
    assert result.exit_code != 0 and str(empty) in result.output and "no texture images" in result.output


# --- the generator ------------------------------------------------------------------------------------------------


def generator():
    spec = importlib.util.spec_from_file_location("make_scratch_textures", ROOT / "tools" / "make_scratch_textures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["scratch_sparse.png", "paper_silk.png"])
def test_generator_is_deterministic_and_made_the_shipped_files(name: str) -> None:
    make = generator()
    first, again = make.render(name), make.render(name)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, make.render(name, seed=make.DEFAULT_SEED + 1))
    shipped = np.asarray(Image.open(bundled_folder() / name))
    # Equal up to rare 1-level roundings that another CPU's OpenCV SIMD path may produce; any change to a
    # recipe changes far more: then rerun the script (see the README it writes).
    diff = np.abs(first.astype(int) - shipped)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, f"{name} is stale: rerun tools/make_scratch_textures.py"
    assert (bundled_folder() / "README.md").read_text() == make.readme(make.DEFAULT_SEED)
