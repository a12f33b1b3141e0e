"""Benchmark metrics, cross-checked against scikit-image and hand computations on small real photos."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_photo
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from degrade.bench.metrics import PSNR_CAP, image_scores, mask_scores, scores_from_counts


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy output, clean target, damage mask): astronaut at 64 px, Gaussian noise, a stronger band in the mask."""
    target = small_photo("astronaut", 64)
    rng = np.random.default_rng(6)
    mask = np.zeros(target.shape[:2], bool)
    mask[20:30, 8:56] = True
    noise = rng.normal(0, 6, target.shape)
    noise[mask] *= 4
    output = np.clip(np.rint(target + noise), 0, 255).astype(np.uint8)
    return output, target, mask


def bt601_y(image: np.ndarray) -> np.ndarray:
    """Luma written out from the BT.601 coefficients (not through scikit-image)."""
    r, g, b = (image[..., i].astype(np.float64) / 255 for i in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def test_rgb_scores_match_scikit_image(pair):
    output, target, mask = pair
    scores = image_scores(output, target, mask)
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(target, output, data_range=255), abs=1e-9)
    expected_ssim = structural_similarity(target, output, channel_axis=2, data_range=255)
    assert scores["ssim"] == pytest.approx(expected_ssim, abs=1e-9)
    assert 20 < scores["psnr"] < 40 and 0.3 < scores["ssim"] < 0.99


def test_in_and_out_of_mask_psnr_are_psnr_of_the_pixel_vectors(pair):
    output, target, mask = pair
    scores = image_scores(output, target, mask)
    inside = peak_signal_noise_ratio(target[mask].ravel(), output[mask].ravel(), data_range=255)
    outside = peak_signal_noise_ratio(target[~mask].ravel(), output[~mask].ravel(), data_range=255)
    assert scores["psnr_in"] == pytest.approx(inside, abs=1e-9)
    assert scores["psnr_out"] == pytest.approx(outside, abs=1e-9)
    assert scores["psnr_in"] < scores["psnr"] < scores["psnr_out"]  # the mask holds the strong noise


def test_in_and_out_of_mask_ssim_are_means_of_the_ssim_map(pair):
    output, target, mask = pair
    scores = image_scores(output, target, mask)
    _, full = structural_similarity(target, output, channel_axis=2, data_range=255, full=True)
    assert scores["ssim_in"] == pytest.approx(full[mask].mean(), abs=1e-12)
    assert scores["ssim_out"] == pytest.approx(full[~mask].mean(), abs=1e-12)
    assert scores["ssim_in"] < scores["ssim_out"]


def test_y_scores_match_an_independent_bt601_computation(pair):
    output, target, _ = pair
    scores = image_scores(output, target, None)
    y_out, y_target = bt601_y(output), bt601_y(target)
    assert 16 <= y_target.min() and y_target.max() <= 235
    mse = np.mean((y_out - y_target) ** 2)
    assert scores["psnr_y"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-6)
    assert scores["ssim_y"] == pytest.approx(structural_similarity(y_target, y_out, data_range=255), abs=1e-6)
    # Independent per-channel noise partly cancels in a weighted sum, so luma is cleaner than RGB.
    assert scores["psnr_y"] > scores["psnr"]


def test_identical_images_are_capped_and_damage_only_in_the_mask_leaves_the_rest_perfect(pair):
    _, target, mask = pair
    same = image_scores(target, target, mask)
    assert same == {key: (PSNR_CAP if key.startswith("psnr") else pytest.approx(1.0)) for key in same}
    assert len(same) == 8
    damaged = target.copy()
    damaged[mask] = 255 - damaged[mask]
    scores = image_scores(damaged, target, mask)
    assert scores["psnr_out"] == PSNR_CAP
    assert scores["psnr_in"] < 15


def test_mask_regions_without_pixels_have_no_scores(pair):
    output, target, mask = pair
    assert set(image_scores(output, target, None)) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    assert set(image_scores(output, target, np.zeros_like(mask))) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    whole = image_scores(output, target, np.full(mask.shape, 255, np.uint8))
    assert set(whole) == {"psnr", "ssim", "psnr_y", "ssim_y", "psnr_in", "ssim_in"}
    assert whole["psnr_in"] == pytest.approx(whole["psnr"])


def test_tiny_images_use_a_smaller_window_and_bad_inputs_are_refused(pair):
    output, target, mask = pair
    assert image_scores(output[:5, :9], target[:5, :9], None)["ssim"] == pytest.approx(
        structural_similarity(target[:5, :9], output[:5, :9], channel_axis=2, data_range=255, win_size=5)
    )
    with pytest.raises(ValueError, match="one size"):
        image_scores(output[:40], target, None)
    with pytest.raises(ValueError, match="uint8"):
        image_scores(output.astype(np.float32), target, None)
    with pytest.raises(ValueError, match="mask of shape"):
        image_scores(output, target, mask[:10])
    with pytest.raises(ValueError, match="at least 3 px"):
        image_scores(output[:2], target[:2], None)


def test_mask_scores_on_hand_built_masks():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True  # 16 px
    predicted = np.zeros((10, 10), np.uint8)
    predicted[4:8, 2:6] = 255  # 16 px, 8 of them inside the truth
    scores = mask_scores(predicted, truth)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (8, 8, 8)
    assert scores["precision"] == scores["recall"] == scores["f1"] == pytest.approx(0.5)
    assert scores["iou"] == pytest.approx(8 / 24)
    predicted[:] = 0
    predicted[2:4, 2:6] = 1  # 8 px, all inside
    scores = mask_scores(predicted, truth)
    assert (scores["precision"], scores["recall"], scores["f1"], scores["iou"]) == pytest.approx((1, 0.5, 2 / 3, 0.5))


def test_mask_scores_of_empty_masks_follow_the_nothing_to_get_wrong_rule():
    empty, some = np.zeros((6, 6), bool), np.eye(6, dtype=bool)
    assert mask_scores(empty, empty) == {"precision": 1, "recall": 1, "f1": 1, "iou": 1, "tp": 0, "fp": 0, "fn": 0}
    missed = mask_scores(empty, some)
    assert (missed["precision"], missed["recall"], missed["f1"], missed["iou"], missed["fn"]) == (1, 0, 0, 0, 6)
    invented = mask_scores(some, empty)
    assert (invented["precision"], invented["recall"], invented["f1"], invented["iou"], invented["fp"]) == (
        0,
        1,
        0,
        0,
        6,
    )
    with pytest.raises(ValueError, match="does not fit"):
        mask_scores(some, some[:3])


def test_pooled_scores_weigh_pixels_not_images():
    pooled = scores_from_counts(tp=90 + 1, fp=10 + 0, fn=0 + 9)  # a big good image and a small poor one
    assert pooled["f1"] == pytest.approx(2 * 91 / (2 * 91 + 10 + 9))
    per_image = np.mean([scores_from_counts(90, 10, 0)["f1"], scores_from_counts(1, 0, 9)["f1"]])
    assert pooled["f1"] > per_image + 0.3
