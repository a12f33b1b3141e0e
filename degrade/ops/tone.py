"""The look of aged prints: faded dyes, colour casts, sepia toning, yellowed paper,
uneven exposure, and plain black-and-white.

Defaults are deliberately subtle: presets decide how often and how hard to age a photo.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, clip01, luminance, to_uint8, uniform

_LUMA = np.array([0.299, 0.587, 0.114])


def _transform(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x4 affine colour matrix (out = M[:, :3] @ rgb + M[:, 3]) in one OpenCV pass, clipped."""
    return clip01(cv2.transform(img, matrix.astype(np.float64)))


# --- fade -------------------------------------------------------------------------------


def sample_fade(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {
        "contrast": uniform(rng, cfg["contrast"]),
        "saturation": uniform(rng, cfg["saturation"]),
        "black_lift": uniform(rng, cfg["black_lift"]),
        "white_drop": uniform(rng, cfg["white_drop"]),
    }


def apply_fade(img: np.ndarray, params: Params) -> np.ndarray:
    """Dye and silver loss: blend toward luma by `saturation`, compress toward the mean luma by
    `contrast` (both loss fractions in [0, 1]), then map [0, 1] to [black_lift, 1 - white_drop]
    (lifted blacks, dull highlights). The three steps are affine, so they run fused as
    out = a * img + b * luma + c. All zeros is identity.
    """
    s, c = float(params["saturation"]), float(params["contrast"])
    lift, drop = float(params["black_lift"]), float(params["white_drop"])
    if s == 0 and c == 0 and lift == 0 and drop == 0:
        return img.copy()
    span = 1.0 - drop - lift
    k = (1.0 - c) * span
    mean_luma = float(np.dot(cv2.mean(img)[:3], _LUMA))
    # out = k (1 - s) img + k s luma + const, as one 3x4 colour matrix
    matrix = np.eye(3) * (k * (1.0 - s)) + k * s * np.tile(_LUMA, (3, 1))
    const = lift + span * c * mean_luma
    return _transform(img, np.hstack([matrix, np.full((3, 1), const)]))


# --- colour cast ------------------------------------------------------------------------

# (hue in degrees, half-width, weight) of the casts aged colour prints show: cyan dye fades
# first (red/magenta), yellowed varnish and paper (orange/yellow); green, cyan and blue casts
# (e.g. from faded magenta dye or a bad scan balance) are rarer.
_CAST_HUES = (
    (0.0, 12.0, 0.22),  # red
    (330.0, 15.0, 0.15),  # magenta
    (30.0, 10.0, 0.25),  # orange
    (52.0, 8.0, 0.15),  # yellow
    (120.0, 20.0, 0.07),  # green
    (185.0, 15.0, 0.10),  # cyan
    (220.0, 15.0, 0.06),  # blue
)


def tint(hue: float) -> np.ndarray:
    """Luma-neutral RGB direction of `hue` degrees: the fully saturated colour minus its Rec. 601
    luma, scaled so the largest channel change is 1. Adding it shifts chroma, not brightness."""
    h6 = (hue % 360.0) / 60.0
    rgb = np.clip([abs(h6 - 3.0) - 1.0, 2.0 - abs(h6 - 2.0), 2.0 - abs(h6 - 4.0)], 0.0, 1.0)
    t = rgb - rgb @ _LUMA
    return t / np.abs(t).max()


def sample_color_cast(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    weights = np.array([w for _, _, w in _CAST_HUES])
    centre, half, _ = _CAST_HUES[int(rng.choice(len(_CAST_HUES), p=weights / weights.sum()))]
    hue = centre + half * rng.uniform(-1.0, 1.0)
    if rng.random() < float(cfg["crossover_probability"]):
        shadow_hue = hue + 180.0 + rng.uniform(-30.0, 30.0)  # crossover: complementary shadows
    else:
        shadow_hue = hue + rng.uniform(-20.0, 20.0)
    gain = 1.0 + uniform(rng, cfg["strength"]) * tint(hue)
    offset = uniform(rng, cfg["shadow_strength"]) * tint(shadow_hue)
    return {"gain": [float(v) for v in gain], "offset": [float(v) for v in offset]}


def apply_color_cast(img: np.ndarray, params: Params) -> np.ndarray:
    """Per-channel levels out_c = offset_c + x_c * (gain_c - offset_c): white goes to `gain`,
    black to `offset`, so highlights and shadows can carry different tints (the colour crossover
    of faded dye prints). gain [1, 1, 1] with offset [0, 0, 0] is identity."""
    gain = np.asarray(params["gain"], dtype=np.float32)
    offset = np.asarray(params["offset"], dtype=np.float32)
    if np.all(gain == 1) and np.all(offset == 0):
        return img.copy()
    return _transform(img, np.hstack([np.diag(gain - offset), offset[:, None]]))


# --- sepia ------------------------------------------------------------------------------

_SEPIA_SPREAD = np.array([-0.45, 0.05, 0.85])  # log2 gamma per channel at warmth 1


def sample_sepia(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"amount": uniform(rng, cfg["amount"]), "warmth": uniform(rng, cfg["warmth"])}


def apply_sepia(img: np.ndarray, params: Params) -> np.ndarray:
    """Sepia-toned monochrome print: luma Y through per-channel curves Y ** gamma_c, with
    gamma_c = 2 ** (warmth * (-0.45, 0.05, 0.85)), so black and white stay put and mid-tones turn
    browner as `warmth` grows (roughly luma-neutral); blended with the image by `amount`. Amount 0 is identity."""
    amount = float(params["amount"])
    if amount <= 0:
        return img.copy()
    levels = np.arange(256, dtype=np.float64) / 255.0
    gammas = np.exp2(float(params["warmth"]) * _SEPIA_SPREAD)
    table = (levels[:, None] ** gammas[None, :]).astype(np.float32).reshape(1, 256, 3)
    # Tone curves through a 256-entry table on the 8-bit luma: exact to the output's precision.
    toned = cv2.LUT(cv2.cvtColor(to_uint8(luminance(img)), cv2.COLOR_GRAY2RGB), table)
    return clip01(cv2.addWeighted(img, 1.0 - amount, toned, amount, 0.0))


# --- yellowing --------------------------------------------------------------------------

_YELLOW_LOSS = np.array([0.04, 0.12, 0.5], dtype=np.float32)  # fraction of R, G, B lost at white, amount 1


def sample_yellowing(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"amount": uniform(rng, cfg["amount"])}


def apply_yellowing(img: np.ndarray, params: Params) -> np.ndarray:
    """Yellowed paper and varnish absorb blue (and some green): each channel is multiplied by
    1 - amount * loss_c * (0.4 + 0.6 Y), losses (R, G, B) = (0.04, 0.12, 0.5), so light areas,
    where the stain is seen against the paper, yellow most. Amount 0 is identity."""
    amount = float(params["amount"])
    if amount <= 0:
        return img.copy()
    # factor_c = 1 - amount * loss_c * (0.4 + 0.6 Y): one 1->3 channel affine map of the luma.
    loss = amount * _YELLOW_LOSS.astype(np.float64)
    factor = cv2.transform(luminance(img), np.stack([-0.6 * loss, 1.0 - 0.4 * loss], axis=1))
    return clip01(cv2.multiply(img, factor))


# --- exposure ---------------------------------------------------------------------------

_CENTRE_JITTER = 0.1  # vignette centre offset range, relative to the image size
_GRID = 4  # blotch grid resolution
_GAIN_STEP = 8  # px per sample of the coarse gain grid


def sample_exposure(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {
        "vignette": uniform(rng, cfg["vignette"]),
        "center": [float(v) for v in 0.5 + rng.uniform(-_CENTRE_JITTER, _CENTRE_JITTER, size=2)],
        "gradient": uniform(rng, cfg["gradient"]),
        "angle": float(rng.uniform(0.0, 360.0)),
        "blotches": uniform(rng, cfg["blotches"]),
        "grid": rng.standard_normal((_GRID, _GRID)).tolist(),
    }


def apply_exposure(img: np.ndarray, params: Params) -> np.ndarray:
    """Uneven exposure and development as one smooth multiplicative gain, built in stops (log2):

    - vignette: corners of a centred image darken to 1 - `vignette` (radial falloff from
      `center`, relative x/y, distance scaled by the half-diagonal so the vignette is round);
    - gradient: exposure changes by `gradient` stops across the image along `angle` degrees;
    - blotches: `blotches` stops times `grid` (N(0, 1) values) upsampled bicubically.
    All strengths 0 is identity.
    """
    vignette = min(float(params["vignette"]), 0.99)
    gradient, blotches = float(params["gradient"]), float(params["blotches"])
    if vignette <= 0 and gradient == 0 and blotches == 0:
        return img.copy()
    h, w = img.shape[:2]
    cx, cy = (float(v) for v in params["center"])
    half_diag = 0.5 * math.hypot(w, h)
    xs = ((np.arange(w) + 0.5) - cx * w) / half_diag
    ys = ((np.arange(h) + 0.5) - cy * h) / half_diag
    # Vignette and gradient are separable in stops (k (x^2 + y^2) + g (a x + b y)), so the gain is
    # an outer product of two 1-D curves: exact, and far cheaper than exp2 at every pixel.
    k = math.log2(1.0 - vignette) if vignette > 0 else 0.0
    a = math.radians(float(params["angle"]))
    # Relative position along the direction, about -0.5..0.5 across the image.
    gx = np.exp2(k * xs**2 + gradient * math.cos(a) * half_diag / w * xs).astype(np.float32)
    gy = np.exp2(k * ys**2 + gradient * math.sin(a) * half_diag / h * ys).astype(np.float32)
    gain = np.outer(gy, gx)
    if blotches != 0:
        # Smooth by construction: exp2 on a coarse grid (one sample per _GAIN_STEP px), then interpolated.
        grid = np.asarray(params["grid"], dtype=np.float64)
        coarse = (max(2, math.ceil(w / _GAIN_STEP)), max(2, math.ceil(h / _GAIN_STEP)))
        stops = cv2.resize(grid, coarse, interpolation=cv2.INTER_CUBIC) * blotches
        gain *= cv2.resize(np.exp2(stops).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return clip01(img * gain[..., None])


# --- grayscale --------------------------------------------------------------------------


def sample_grayscale(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {}


def apply_grayscale(img: np.ndarray, params: Params) -> np.ndarray:
    """Black-and-white print: Rec. 601 luma on all three channels."""
    return clip01(cv2.cvtColor(luminance(img), cv2.COLOR_GRAY2RGB))


OPS = [
    Op(
        "fade",
        sample_fade,
        apply_fade,
        defaults={
            "contrast": [0.0, 0.3],
            "saturation": [0.1, 0.5],
            "black_lift": [0.0, 0.08],
            "white_drop": [0.0, 0.08],
        },
        doc=(
            "Faded print; `contrast` and `saturation` loss-fraction ranges, `black_lift` range (black -> lift), "
            "`white_drop` range (white -> 1 - drop)."
        ),
    ),
    Op(
        "color_cast",
        sample_color_cast,
        apply_color_cast,
        defaults={"strength": [0.02, 0.08], "shadow_strength": [0.0, 0.04], "crossover_probability": 0.4},
        doc=(
            "Colour cast of faded dyes; `strength` range = largest channel shift at white, `shadow_strength` range = "
            "largest shift at black, `crossover_probability` p that shadows take the complementary hue."
        ),
    ),
    Op(
        "sepia",
        sample_sepia,
        apply_sepia,
        defaults={"amount": [0.6, 1.0], "warmth": [0.5, 1.0]},
        doc="Sepia toning; `amount` blend range (1 = fully toned monochrome), `warmth` range (0 = grey, 1 = brown).",
    ),
    Op(
        "yellowing",
        sample_yellowing,
        apply_yellowing,
        defaults={"amount": [0.1, 0.5]},
        doc="Paper/varnish yellowing; `amount` range (1 = half the blue gone at white).",
    ),
    Op(
        "exposure",
        sample_exposure,
        apply_exposure,
        defaults={"vignette": [0.0, 0.3], "gradient": [0.0, 0.4], "blotches": [0.0, 0.15]},
        doc=(
            "Uneven exposure; `vignette` range (corner darkening fraction), `gradient` range (stops across the "
            "image), `blotches` range (stops of low-frequency density variation)."
        ),
    ),
    Op(
        "grayscale",
        sample_grayscale,
        apply_grayscale,
        defaults={},
        doc="Black-and-white: Rec. 601 luma on all channels.",
    ),
]
