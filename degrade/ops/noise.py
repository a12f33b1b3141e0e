"""Sensor, film and transmission noise: Gaussian, shot, speckle, salt-and-pepper and film grain.

Every op draws a `seed` in `sample` and rebuilds its generator from it in `apply`, so a
params dict replays the exact same noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, clip01, luminance, new_seed, standard_normal, to_uint8, uniform


def sample_gaussian_noise(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {
        "sigma": uniform(rng, cfg["sigma"]),
        "mono": bool(rng.random() < float(cfg["mono_probability"])),
        "seed": new_seed(rng),
    }


def apply_gaussian_noise(img: np.ndarray, params: Params) -> np.ndarray:
    """Additive white Gaussian noise of std `sigma`; `mono` repeats one field on all channels (luma-only noise)."""
    sigma = float(params["sigma"])
    if sigma <= 0:
        return img.copy()
    rng = np.random.default_rng(int(params["seed"]))
    h, w = img.shape[:2]
    if params["mono"]:
        return clip01(img + standard_normal(rng, (h, w, 1), sigma))
    noise = standard_normal(rng, img.shape, sigma)
    noise += img
    return clip01(noise)


def sample_poisson_noise(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"amount": uniform(rng, cfg["amount"]), "seed": new_seed(rng)}


def apply_poisson_noise(img: np.ndarray, params: Params) -> np.ndarray:
    """Photon shot noise: count Poisson(img * peak) photons with peak = 1 / amount**2, so `amount`
    is the relative noise std at white and dark areas get relatively noisier; amount 0 is identity."""
    amount = float(params["amount"])
    if amount <= 0:
        return img.copy()
    rng = np.random.default_rng(int(params["seed"]))
    peak = 1.0 / (amount * amount)
    counts = rng.poisson(img * np.float32(peak)).astype(np.float32)
    counts *= np.float32(1.0 / peak)
    return clip01(counts)


def sample_speckle_noise(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"sigma": uniform(rng, cfg["sigma"]), "seed": new_seed(rng)}


def apply_speckle_noise(img: np.ndarray, params: Params) -> np.ndarray:
    """Multiplicative noise img + img * N(0, sigma) per channel, as the official Bringing-Old-Photos
    release synthesises it (noise scales with brightness); sigma 0 is identity."""
    sigma = float(params["sigma"])
    if sigma <= 0:
        return img.copy()
    rng = np.random.default_rng(int(params["seed"]))
    noise = standard_normal(rng, img.shape, sigma)
    noise *= img
    noise += img
    return clip01(noise)


def sample_salt_pepper(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {
        "amount": uniform(rng, cfg["amount"]),
        "salt_vs_pepper": uniform(rng, cfg["salt_vs_pepper"]),
        "per_channel": bool(cfg["per_channel"]),
        "seed": new_seed(rng),
    }


def apply_salt_pepper(img: np.ndarray, params: Params) -> np.ndarray:
    """Dust and pinholes: a fraction `amount` of pixels turns white (share `salt_vs_pepper`) or black,
    on all channels at once, or with `per_channel` each channel on its own (coloured specks, as the
    official release draws them); amount 0 is identity."""
    amount = float(params["amount"])
    out = img.copy()
    if amount <= 0:
        return out
    rng = np.random.default_rng(int(params["seed"]))
    # Per-pixel coin flips, drawn the cheap way: how many pixels are hit (binomial), then which
    # (distinct, uniformly chosen) and which of them are salt: the same law, without a full-size field.
    flat = out.reshape(-1) if params.get("per_channel", False) else out.reshape(-1, img.shape[-1])
    hits = int(rng.binomial(flat.shape[0], min(amount, 1.0)))
    where = rng.choice(flat.shape[0], size=hits, replace=False, shuffle=False)
    salt = rng.random(hits) < float(params["salt_vs_pepper"])
    flat[where[salt]] = 1.0
    flat[where[~salt]] = 0.0
    return out


_GRAIN_LOWRES_SIGMA = 1.5  # blur (px) kept at the reduced resolution when grain is coarse


def grain_field(
    rng: np.random.Generator, shape: tuple[int, int], size: float, channels: int = 1, min_factor: float = 1.0
) -> np.ndarray:
    """Zero-mean, unit-std noise of correlation length `size` px, shape (H, W, channels).

    White noise blurred by a Gaussian of `size` px, rescaled by the blur's exact noise gain
    (the sum of the squared kernel taps) instead of a measured std: one pass fewer, and the
    strength does not wobble with image content. Coarse grain is synthesised at a reduced
    resolution (the blur keeps `_GRAIN_LOWRES_SIGMA` px there) and upsampled, which costs far
    less than a wide blur at full size; `min_factor` forces at least that reduction.
    """
    h, w = shape
    factor = max(size / _GRAIN_LOWRES_SIGMA if size > 2 * _GRAIN_LOWRES_SIGMA else 1.0, min_factor)
    lh, lw = max(1, math.ceil(h / factor)), max(1, math.ceil(w / factor))
    field = standard_normal(rng, (lh, lw, channels))
    sigma = size / factor
    if sigma > 0.05:
        ksize = 2 * math.ceil(3 * sigma) + 1
        taps = cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F).ravel()
        field = cv2.GaussianBlur(field, (ksize, ksize), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        field *= np.float32(1.0 / float(np.sum(taps * taps)))  # 2-D gain = (sum of 1-D taps squared) ** 2, std its root
    if factor > 1.0:
        field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    return field.reshape(h, w, channels)


def sample_film_grain(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {
        "amount": uniform(rng, cfg["amount"]),
        "size": uniform(rng, cfg["size"]),
        "color": uniform(rng, cfg["color"]),
        "seed": new_seed(rng),
    }


def apply_film_grain(img: np.ndarray, params: Params) -> np.ndarray:
    """Silver/dye grain: a spatially correlated field of `size` px, std `amount` at mid-grey.

    Grain follows the density of the print, so its strength is sqrt(4 Y (1 - Y)) of the luma Y:
    full in mid-tones, fading towards paper white and maximum black. It is mostly one mono field
    shared by R, G, B plus an independent, twice coarser per-channel part of weight `color`
    (0 = pure mono), mixed so the total std stays `amount`; amount 0 is identity.
    """
    amount = float(params["amount"])
    if amount <= 0:
        return img.copy()
    rng = np.random.default_rng(int(params["seed"]))
    color = min(max(float(params["color"]), 0.0), 1.0)
    h, w = img.shape[:2]
    size = float(params["size"])
    # Strength per pixel from an 8-bit luma through a 256-entry table: exact to the output's own precision.
    levels = np.arange(256, dtype=np.float64) / 255.0
    table = (amount * np.sqrt(4.0 * levels * (1.0 - levels))).astype(np.float32)
    strength = cv2.LUT(to_uint8(luminance(img)), table)
    grain = grain_field(rng, (h, w), size)[..., 0]
    grain *= strength
    if color <= 0:
        return clip01(img + grain[..., None])
    grain *= np.float32(math.sqrt(1.0 - color * color))
    # Dye clouds are coarser than silver grain: the chroma part has twice the correlation length,
    # synthesised at half resolution (a quarter of the cost).
    chroma = grain_field(rng, (h, w), 2.0 * size, channels=3, min_factor=2.0)
    chroma *= (strength * np.float32(color))[..., None]
    chroma += grain[..., None]
    chroma += img
    return clip01(chroma)


OPS = [
    Op(
        "gaussian_noise",
        sample_gaussian_noise,
        apply_gaussian_noise,
        defaults={"sigma": [0.01, 0.06], "mono_probability": 0.3},
        doc="Additive Gaussian noise; `sigma` std range ([0, 1] units), `mono_probability` p of identical channels.",
    ),
    Op(
        "poisson_noise",
        sample_poisson_noise,
        apply_poisson_noise,
        defaults={"amount": [0.02, 0.08]},
        doc="Shot noise; `amount` range = relative std at white = 1 / sqrt(peak photon count).",
    ),
    Op(
        "speckle_noise",
        sample_speckle_noise,
        apply_speckle_noise,
        defaults={"sigma": [0.02, 0.2]},
        doc="Multiplicative noise img + img * N(0, sigma); `sigma` range (official release: 5/255..50/255).",
    ),
    Op(
        "salt_pepper",
        sample_salt_pepper,
        apply_salt_pepper,
        defaults={"amount": [0.0, 0.01], "salt_vs_pepper": [0.3, 0.8], "per_channel": False},
        doc=(
            "Impulse noise; `amount` range = fraction of pixels hit, `salt_vs_pepper` range = share set to white, "
            "`per_channel` hits each channel independently (coloured specks)."
        ),
    ),
    Op(
        "film_grain",
        sample_film_grain,
        apply_film_grain,
        defaults={"amount": [0.02, 0.08], "size": [0.7, 1.8], "color": [0.0, 0.3]},
        doc=(
            "Luma-dependent, spatially correlated film grain; `amount` std range at mid-grey, `size` grain "
            "correlation length range in px, `color` range of the independent per-channel share (0 = mono)."
        ),
    ),
]
