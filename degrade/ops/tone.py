"""The look of aged prints: faded dyes, colour casts, sepia toning, yellowed paper,
uneven exposure, and plain black-and-white.

Defaults are deliberately subtle: presets decide how often and how hard to age a photo.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, luminance, uniform

_LUMA = np.array([0.299, 0.587, 0.114])


def _clip(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place and return `x` (a fresh float32 array owned by the caller)."""
    return np.clip(x, 0.0, 1.0, out=x)


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
    y = luminance(img)
    span = 1.0 - drop - lift
    k = (1.0 - c) * span
    const = lift + span * c * float(y.mean(dtype=np.float64))
    y *= np.float32(k * s)
    y += np.float32(const)
    out = img * np.float32(k * (1.0 - s))
    out += y[..., None]
    return _clip(out)


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
    out = img * (gain - offset)
    out += offset
    return _clip(out)


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
    y = luminance(img)
    np.clip(y, 0.0, 1.0, out=y)
    gammas = np.exp2(float(params["warmth"]) * _SEPIA_SPREAD)
    toned = cv2.merge([cv2.pow(y, float(g)) for g in gammas])
    out = cv2.addWeighted(img, 1.0 - amount, toned, amount, 0.0)
    return _clip(out)


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
    weight = luminance(img)
    weight *= np.float32(0.6 * amount)
    weight += np.float32(0.4 * amount)
    factor = 1.0 - weight[..., None] * _YELLOW_LOSS
    factor *= img
    return _clip(factor)


# --- exposure ---------------------------------------------------------------------------

_CENTRE_JITTER = 0.1  # vignette centre offset range, relative to the image size
_GRID = 4  # blotch grid resolution


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
    xs = ((np.arange(w, dtype=np.float32) + 0.5) - np.float32(cx * w)) / np.float32(half_diag)
    ys = ((np.arange(h, dtype=np.float32) + 0.5) - np.float32(cy * h)) / np.float32(half_diag)
    stops = np.zeros((h, w), dtype=np.float32)
    if vignette > 0:
        stops += (xs[None, :] ** 2 + ys[:, None] ** 2) * np.float32(math.log2(1.0 - vignette))
    if gradient != 0:
        a = math.radians(float(params["angle"]))
        # Relative position along the direction, about -0.5..0.5 across the image.
        stops += (xs * np.float32(math.cos(a) * half_diag / w))[None, :] * np.float32(gradient)
        stops += (ys * np.float32(math.sin(a) * half_diag / h))[:, None] * np.float32(gradient)
    if blotches != 0:
        grid = np.asarray(params["grid"], dtype=np.float32)
        stops += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(blotches)
    gain = np.exp2(stops, out=stops)
    return _clip(img * gain[..., None])


# --- grayscale --------------------------------------------------------------------------


def sample_grayscale(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {}


def apply_grayscale(img: np.ndarray, params: Params) -> np.ndarray:
    """Black-and-white print: Rec. 601 luma on all three channels."""
    y = np.clip(luminance(img), 0.0, 1.0)
    return cv2.merge([y, y, y])


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
