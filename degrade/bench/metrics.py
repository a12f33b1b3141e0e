"""Full-reference image scores and damage-mask scores for the benchmark.

Conventions, so a number in a results file means one thing:

- Images are uint8 RGB (H, W, 3) and the data range is 255, for RGB and for Y alike.
- PSNR is ``10 log10(255^2 / MSE)`` with the MSE over every pixel and channel compared. Identical images have
  infinite PSNR; it is capped at `PSNR_CAP` (100 dB) so a mean over images stays finite and JSON stays valid.
- SSIM is scikit-image's `structural_similarity` (7 px uniform window, its default constants, ``data_range=255``,
  RGB as the mean over channels). Images smaller than 7 px use the largest odd window that fits (at least 3 px:
  smaller images are refused).
- Y is ITU-R BT.601 luma exactly as `skimage.color.rgb2ycbcr` gives it: ``16 + (65.481 R + 128.553 G + 24.966 B)``
  with R, G, B in 0..1, so values span 16..235; it is kept as float (not rounded) and scored with
  ``data_range=255``, the convention of the super-resolution literature (e.g. BasicSR's ``test_y_channel``).
- Inside / outside the damage mask: PSNR from the MSE of those pixels (all channels); SSIM as the mean of the full
  SSIM map (per pixel and channel) over those pixels. The map is computed on the whole image, so each pixel's
  value sees its full window; scikit-image's overall SSIM leaves out a border of 3 px that these means include,
  so ``ssim_in`` and ``ssim_out`` need not average to ``ssim``.
- Mask scores: a ratio whose denominator is zero had nothing it could get wrong and scores 1.0 (no predicted
  pixels: precision 1.0; no true pixels: recall 1.0; neither: every score 1.0). The raw counts come along so a
  track's scores can be pooled over pixels with `scores_from_counts` instead of averaged per image.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2ycbcr
from skimage.metrics import mean_squared_error, structural_similarity

#: PSNR of identical images (dB): finite so means and JSON stay usable.
PSNR_CAP = 100.0
DATA_RANGE = 255.0
_SSIM_WINDOW = 7


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for data range 255, capped at PSNR_CAP (an MSE of 0 gives exactly the cap)."""
    if mse <= 0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10 * np.log10(DATA_RANGE**2 / mse)))


def _window(shape: tuple[int, ...]) -> int:
    """scikit-image's default 7 px window, or the largest odd one that fits a smaller image."""
    side = min(shape[:2])
    return _SSIM_WINDOW if side >= _SSIM_WINDOW else side - (side + 1) % 2


def _ssim(output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean SSIM and the per-pixel map (H, W) or (H, W, C) of float or uint8 images, data range 255."""
    channel_axis = 2 if output.ndim == 3 else None
    value, full = structural_similarity(
        target, output, win_size=_window(output.shape), data_range=DATA_RANGE, channel_axis=channel_axis, full=True
    )
    return float(value), full


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 Y of a uint8 RGB image as float64 in 16..235 (scikit-image's rgb2ycbcr)."""
    return rgb2ycbcr(image)[..., 0]


def _check(output: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> None:
    if output.dtype != np.uint8 or target.dtype != np.uint8:
        raise ValueError(f"image scores need uint8 images, got {output.dtype} output and {target.dtype} target")
    if output.shape != target.shape or output.ndim != 3 or output.shape[2] != 3:
        raise ValueError(f"image scores need two (H, W, 3) images of one size, got {output.shape} and {target.shape}")
    if min(output.shape[:2]) < 3:
        raise ValueError(f"image scores need images at least 3 px on each side, got {output.shape}")
    if mask is not None and mask.shape != output.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} does not fit images of shape {output.shape}")


def image_scores(output: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """PSNR and SSIM of `output` against `target` (uint8 RGB) in RGB and Y, and inside/outside `mask`.

    Keys: psnr, ssim, psnr_y, ssim_y; with a non-empty mask (bool, or uint8 where nonzero is damage) also psnr_in
    and ssim_in, and psnr_out and ssim_out unless the mask covers the whole image. Without damage the in/out keys
    are absent (outside would only repeat the whole image), so a mean over images counts only damaged ones.
    """
    _check(output, target, mask)
    ssim, ssim_map = _ssim(output, target)
    y_out, y_target = luma(output), luma(target)
    scores = {
        "psnr": psnr_from_mse(mean_squared_error(target, output)),
        "ssim": ssim,
        "psnr_y": psnr_from_mse(mean_squared_error(y_target, y_out)),
        "ssim_y": _ssim(y_out, y_target)[0],
    }
    damage = None if mask is None else mask > 0
    if damage is None or not damage.any():
        return scores
    for suffix, region in (("in", damage), ("out", ~damage)):
        if region.any():
            scores[f"psnr_{suffix}"] = psnr_from_mse(mean_squared_error(target[region], output[region]))
            scores[f"ssim_{suffix}"] = float(ssim_map[region].mean())
    return scores


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 and IoU from pixel counts; a zero denominator scores 1.0 (nothing to get wrong)."""

    def ratio(hits: int, total: int) -> float:
        return hits / total if total else 1.0

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
    }


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pixel precision, recall, F1 and IoU of a predicted damage mask, plus the counts tp, fp, fn to pool.

    Both masks are (H, W), bool or uint8 (nonzero = damage).
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted mask of shape {predicted.shape} does not fit the true mask {truth.shape}")
    predicted, truth = predicted > 0, truth > 0
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    return {**scores_from_counts(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn}
