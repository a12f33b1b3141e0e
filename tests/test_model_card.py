"""The model-card benchmark (`benchmarks/model_card.py`): metrics against scikit-image, the classical pipelines,
the photo allow-list and suite, and a report that names every method (with a random tiny model)."""

from __future__ import annotations

import math
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from conftest import small_photo
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks import model_card as mc


def pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo, a noisy copy of it and a random mask (about a fifth of the pixels)."""
    rng = np.random.default_rng(seed)
    target = small_photo("astronaut", 64)
    noisy = np.clip(target + rng.normal(0, 12, target.shape), 0, 255).astype(np.uint8)
    return target, noisy, rng.random(target.shape[:2]) < 0.2


def test_psnr_and_ssim_match_scikit_image():
    target, noisy, mask = pair()
    metrics = mc.image_metrics(target, noisy, mask)
    assert metrics["psnr"] == pytest.approx(peak_signal_noise_ratio(target, noisy, data_range=255))
    assert metrics["ssim"] == pytest.approx(structural_similarity(target, noisy, channel_axis=2, data_range=255))


def test_in_mask_metrics_see_only_the_masked_pixels():
    target, noisy, mask = pair()
    metrics = mc.image_metrics(target, noisy, mask)
    assert metrics["psnr_mask"] == pytest.approx(peak_signal_noise_ratio(target[mask], noisy[mask], data_range=255))
    _, ssim_map = structural_similarity(target, noisy, channel_axis=2, data_range=255, full=True)
    assert metrics["ssim_mask"] == pytest.approx(ssim_map[mask].mean())
    repaired = noisy.copy()
    repaired[~mask] = target[~mask]  # outside the mask nothing counts for the in-mask scores
    assert mc.image_metrics(target, repaired, mask)["psnr_mask"] == pytest.approx(metrics["psnr_mask"])


def test_identity_is_infinite_and_an_empty_mask_has_no_score():
    target, _, mask = pair()
    same = mc.image_metrics(target, target, mask)
    assert math.isinf(same["psnr"]) and math.isinf(same["psnr_mask"]) and same["ssim"] == pytest.approx(1.0)
    empty = mc.image_metrics(target, target, np.zeros_like(mask))
    assert math.isnan(empty["psnr_mask"]) and math.isnan(empty["ssim_mask"])
    assert mc.mean_metric([math.inf, 30.0, math.nan]) == pytest.approx((mc.PSNR_CAP + 30.0) / 2)
    assert math.isnan(mc.mean_metric([math.nan]))


def test_detection_scores_pool_counts():
    truth = np.array([[1, 1, 0, 0]], bool)
    predicted = np.array([[1, 0, 1, 0]], bool)
    counts = mc.confusion(truth, predicted) + mc.confusion(truth, truth)
    assert counts.tolist() == [3, 1, 1]
    assert mc.detection_scores(counts) == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "iou": 0.6})
    assert math.isnan(mc.detection_scores(np.array([0, 0, 0]))["f1"])


def test_tolerant_scores_forgive_an_offset_within_the_tolerance_only():
    truth = np.zeros((20, 20), bool)
    truth[:, 10] = True  # a one-pixel vertical scratch
    for shift, matched in ((1, True), (mc.TOLERANCE, True), (mc.TOLERANCE + 1, False)):
        predicted = np.roll(truth, shift, axis=1)
        assert mc.detection_scores(mc.confusion(truth, predicted))["f1"] == 0
        scores = mc.tolerant_scores(mc.tolerant_counts(truth, predicted))
        expected = 1.0 if matched else 0.0
        assert (scores["precision"], scores["recall"]) == (expected, expected)
    # Precision and recall come from their own sides: a detection twice as wide finds all, half of it stray.
    wide = np.zeros_like(truth)
    wide[:, 10 : 10 + 2 * (mc.TOLERANCE + 1)] = True
    counts = mc.tolerant_counts(truth, wide)
    assert counts.tolist() == [20 * (mc.TOLERANCE + 1), 20 * (mc.TOLERANCE + 1), 20, 0]
    assert mc.tolerant_scores(counts) == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3})
    assert math.isnan(mc.tolerant_scores(np.zeros(4, np.int64))["f1"])


def test_classical_pipelines_keep_the_shape_and_inpaint_only_the_mask():
    _, noisy, _ = pair()
    mask = np.zeros(noisy.shape[:2], bool)
    mask[20:24, :] = True
    outputs = mc.run_classical(noisy, mask)
    assert set(outputs) == set(mc.CLASSICAL)
    for image in outputs.values():
        assert image.shape == noisy.shape and image.dtype == np.uint8
    assert np.array_equal(outputs["telea"][~mask], noisy[~mask])
    assert not np.array_equal(outputs["telea"][mask], noisy[mask])
    faded = (noisy // 2 + 60).astype(np.uint8)  # low contrast, lifted blacks
    stretched = mc.levels(faded, mask)
    assert stretched.min() == 0 and stretched.max() == 255


def write_wallpaper(root, name: str, sizes: dict[str, str]) -> None:
    folder = root / name / "contents" / "images"
    folder.mkdir(parents=True)
    for file, photo in sizes.items():
        width, height = (int(v) for v in file.split(".")[0].split("x"))
        image = cv2.resize(small_photo(photo, 64), (width, height), interpolation=cv2.INTER_AREA)
        Image.fromarray(image).save(folder / file)


def test_photos_are_the_allow_list_at_their_largest_landscape_size(tmp_path):
    root = tmp_path / "usr" / "share" / "wallpapers"
    for name in mc.PHOTOS:
        write_wallpaper(root, name, {"96x64.jpg": "coffee", "120x80.png": "astronaut", "80x160.jpg": "camera"})
    write_wallpaper(root, "Altai", {"96x64.jpg": "coffee"})
    photos = mc.find_photos(tmp_path)
    assert list(photos) == list(mc.PHOTOS)
    assert all(path.name == "120x80.png" for path in photos.values())
    assert mc.find_photos(root) == photos
    (root / mc.PHOTOS[0] / "contents" / "images" / "120x80.png").rename(root / mc.PHOTOS[0] / "x.png")
    assert mc.find_photos(root)[mc.PHOTOS[0]].name == "96x64.jpg"
    (root / mc.PHOTOS[1]).rename(root / "elsewhere")
    with pytest.raises(SystemExit, match=mc.PHOTOS[1]):
        mc.find_photos(root)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb to build a package")
def test_the_wallpapers_package_unpacks_from_the_debs_folder(tmp_path):
    """The default path (no --photos): the .deb kept in --debs is unpacked with the training photos' tool."""
    tree = tmp_path / "tree"
    write_wallpaper(tree / "usr" / "share" / "wallpapers", mc.PHOTOS[0], {"96x64.jpg": "coffee"})
    (tree / "DEBIAN").mkdir()
    control = f"Package: {mc.PACKAGE}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    (tree / "DEBIAN" / "control").write_text(control)
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--build", str(tree), str(debs / f"{mc.PACKAGE}_1.0_all.deb")], check=True)
    root = mc.unpacked_package(debs, tmp_path / "into")
    assert (mc.wallpapers_folder(root) / mc.PHOTOS[0] / "contents" / "images" / "96x64.jpg").is_file()


def test_suite_photos_are_512_high_at_most_768_wide_and_seeded():
    wide = cv2.resize(small_photo("astronaut", 64), (200, 100), interpolation=cv2.INTER_AREA)
    assert mc.suite_photo(wide).shape == (512, 768, 3)
    photo = mc.suite_photo(cv2.resize(small_photo("coffee", 64), (80, 60), interpolation=cv2.INTER_AREA))
    assert photo.shape == (512, 683, 3)
    a, b = (mc.degrade_photo(photo, "scratch-detect", "coffee", 0, seed=3) for _ in range(2))
    assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.mask, b.mask)
    assert a.mask.dtype == bool and a.mask.any()  # the scratch-detect preset always scratches
    other = mc.degrade_photo(photo, "scratch-detect", "coffee", 1, seed=3)
    assert not np.array_equal(a.degraded, other.degraded)


def test_report_names_every_method_and_pictures_are_small(tmp_path):
    torch = pytest.importorskip("torch")
    from restore.config import model_config
    from restore.export import build_networks, save_model
    from restore.pipeline import Restorer

    torch.manual_seed(0)
    tiny = model_config("tiny")
    weights = save_model(tmp_path / "tiny.safetensors", tiny, build_networks(tiny), {})
    suite = [
        mc.degrade_photo(small_photo(name, 48), track, name, 0, seed=0)
        for track in mc.TRACKS
        for name in ("astronaut", "coffee")
    ]
    results = mc.evaluate(Restorer.load(weights, device="cpu"), "tiny", suite, progress=False)
    best = results.best_classical()
    assert best in mc.CLASSICAL
    pictures = mc.write_pictures(results, "tiny", best, tmp_path / "images")
    assert len(pictures) == 2  # the main track has two images, fewer than PICTURES
    for path in pictures:
        strip = cv2.imread(str(path))
        assert strip.shape[1] <= 1200 and path.stat().st_size < 300_000
    timings = {
        label: {"seconds": 1.0, "runs": [1.0, 1.1, 0.9], "peak_mb": 500.0, "load": 0.5} for label in mc.TIMING_SIZES
    }
    report = mc.render_report(
        results,
        label="tiny",
        model="random tiny",
        command="python benchmarks/model_card.py",
        seed=0,
        repeats=1,
        photos={"astronaut": "skimage", "coffee": "skimage"},
        timings=timings,
        pictures=pictures,
        report_dir=tmp_path,
    )
    for method in ("input", *mc.CLASSICAL, "tiny"):
        assert f"| {method} |" in report or f"| {method} (best classical) |" in report
    for track in mc.TRACKS:
        assert f"track `{track}`" in report and f"| {track} | thresholded |" in report
    assert "(images/" in report and "1 MP (1155×866)" in report
    assert "| 1 MP photo, seconds on 2 threads | < 10 s | 1.00 s | yes |" in report
