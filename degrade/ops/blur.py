"""Optical softness: Gaussian, motion and defocus blur."""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, choice, uniform


def sample_gaussian_blur(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    kernel = choice(rng, cfg["kernel_sizes"]) if cfg["kernel_sizes"] else 0
    return {"kernel": int(kernel), "sigma": uniform(rng, cfg["sigma"])}


def apply_gaussian_blur(img: np.ndarray, params: Params) -> np.ndarray:
    """Blur with a Gaussian of `sigma` px; `kernel` 0 sizes the kernel from sigma; sigma 0 is identity."""
    sigma = float(params["sigma"])
    if sigma <= 0:
        return img.copy()
    k = int(params["kernel"])
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised kernel of an anti-aliased line `length` px long at `angle` degrees.

    Each tap is weighted by analytic coverage: a 1-px tent across the line times a ramp
    at the two ends, so the kernel varies continuously with sub-pixel length and angle
    instead of jumping between rasterised lines. Angle 0 is horizontal, 90 vertical.
    """
    half = length / 2.0
    r = int(math.ceil(math.hypot(half + 0.5, 1.0)))
    ys, xs = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    a = math.radians(angle)
    c, s = np.float32(math.cos(a)), np.float32(-math.sin(a))  # image y points down
    along = np.abs(xs * c + ys * s)
    across = np.abs(xs * s - ys * c)
    k = np.clip(1.0 - across, 0.0, 1.0) * np.clip(half + 0.5 - along, 0.0, 1.0)
    ys_nz, xs_nz = np.nonzero(k)
    m = int(max(np.abs(ys_nz - r).max(), np.abs(xs_nz - r).max()))  # trim the empty border, keep it centred
    k = k[r - m : r + m + 1, r - m : r + m + 1]
    return (k / k.sum()).astype(np.float32)


def disk_kernel(radius: float) -> np.ndarray:
    """Normalised anti-aliased disk of `radius` px (taps weighted by approximate pixel coverage)."""
    r = max(int(math.ceil(radius + 0.5)) - 1, 0)  # taps at distance >= radius + 0.5 are empty
    ys, xs = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    k = np.clip(radius + 0.5 - np.sqrt(xs * xs + ys * ys), 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def sample_motion_blur(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"length": uniform(rng, cfg["length"]), "angle": uniform(rng, cfg["angle"])}


def apply_motion_blur(img: np.ndarray, params: Params) -> np.ndarray:
    """Camera shake during exposure: average along a line of `length` px; length <= 1 is identity."""
    length = float(params["length"])
    if length <= 1.0:
        return img.copy()
    kernel = motion_kernel(length, float(params["angle"]))
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def sample_defocus_blur(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"radius": uniform(rng, cfg["radius"])}


def apply_defocus_blur(img: np.ndarray, params: Params) -> np.ndarray:
    """Out-of-focus lens: convolve with the disk-shaped circle of confusion; radius <= 0 is identity."""
    radius = float(params["radius"])
    if radius <= 0.0:
        return img.copy()
    return cv2.filter2D(img, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT_101)


OPS = [
    Op(
        "gaussian_blur",
        sample_gaussian_blur,
        apply_gaussian_blur,
        defaults={"sigma": [0.5, 1.5], "kernel_sizes": []},
        doc="Gaussian blur; `sigma` range in px, `kernel_sizes` odd sizes to choose from (empty: sized from sigma).",
    ),
    Op(
        "motion_blur",
        sample_motion_blur,
        apply_motion_blur,
        defaults={"length": [3.0, 9.0], "angle": [0.0, 180.0]},
        doc="Linear motion blur; `length` range in px (<= 1 is identity), `angle` range in degrees.",
    ),
    Op(
        "defocus_blur",
        sample_defocus_blur,
        apply_defocus_blur,
        defaults={"radius": [1.0, 3.0]},
        doc="Defocus (disk) blur; `radius` range in px (<= 0 is identity).",
    ),
]
