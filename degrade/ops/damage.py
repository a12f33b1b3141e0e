"""Shared machinery of the structured (masked) damage ops: one blend rule, one mask rule, scale, noise fields.

Every structured op renders a *strength* map `s` in [0, 1] (how much of each pixel the damage
covers) and a damage colour `target` (a colour, or a per-pixel image such as a darkened copy),
then blends `out = img + s * (target - img)`. The mask is `s >= MASK_THRESHOLD`, the same rule
for every op, so:

- outside the mask a pixel moves less than `MASK_THRESHOLD` of the way to the damage colour
  (at most 0.2 * |target - img|: the faint anti-aliased rim of a stroke, the soft edge of a stain);
- inside the mask it moves at least that far.

The mask is a property of the damage, not of the picture: a white scratch over a white sky is
still masked, which is what a detector must learn (and what the paper's texture masks do).

Geometry in configs is given in pixels at a 512 px short side and scales with the image
(`image_scale`), so a crop and the whole scan of a print get damage of the same physical size.
Strokes (scratches, cracks, fibres) are drawn by `degrade.ops.strokes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MASK_THRESHOLD = 0.2
"""A pixel is damaged (masked) when the damage covers at least this fraction of it."""

BLEND_ROWS = 512
"""`blend` works through the damage's box this many rows at a time (bounded temporaries on large scans)."""


def damage_box(strength: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of the nonzero pixels of `strength`: all that `blend` touches."""
    x, y, w, h = cv2.boundingRect((strength > 0).view(np.uint8))
    return slice(y, y + h), slice(x, x + w)


def blend(img: np.ndarray, strength: np.ndarray, target: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Blend `img` toward `target` by per-pixel `strength`; return `(new image, mask)`.

    `img` is float32 (H, W, 3); `strength` float32 (H, W) in [0, 1]; `target` an RGB colour, a
    float32 (H, W, 3) image, or a float32 image of just the `damage_box` of `strength` (so a caller
    building a per-pixel target need not fill a whole image). The input is never modified. Only
    the damage's box is computed (most damage is local), with OpenCV's fused per-channel arithmetic.
    """
    out = img.copy()
    rows, cols = damage_box(strength)
    tgt = np.asarray(target, dtype=np.float32)
    if tgt.ndim == 3 and tgt.shape[:2] != (rows.stop - rows.start, cols.stop - cols.start):
        tgt = tgt[rows, cols]
    # In bands of rows, so the temporaries stay small on a large scan whatever the damage's extent.
    for top in range(rows.start, rows.stop, BLEND_ROWS):
        band = slice(top, min(top + BLEND_ROWS, rows.stop))
        s = strength[band, cols].astype(np.float32, copy=False)
        region = np.ascontiguousarray(img[band, cols])
        if tgt.ndim == 1:  # a colour: an OpenCV per-channel scalar, no colour image materialised
            away = cv2.subtract(region, (float(tgt[0]), float(tgt[1]), float(tgt[2]), 0.0))
        else:
            part = tgt[band.start - rows.start : band.stop - rows.start]
            away = cv2.subtract(region, np.ascontiguousarray(part))
        mixed = cv2.subtract(region, cv2.multiply(cv2.merge([s, s, s]), away))  # img - s * (img - target)
        out[band, cols] = np.clip(mixed, 0.0, 1.0, out=mixed)
    return out, strength >= MASK_THRESHOLD


def palette_image(index: np.ndarray, palette: Sequence[Sequence[float]]) -> np.ndarray:
    """Float32 (H, W, 3) image whose pixel is `palette[index]` for a uint8 (H, W) `index` map: one
    OpenCV table look-up, several times faster than numpy selects over a 3-wide last axis."""
    table = np.zeros((1, 256, 3), dtype=np.float32)
    table[0, : len(palette)] = palette
    return cv2.LUT(cv2.merge([index, index, index]), table)


def blend_polarities(
    img: np.ndarray, bright: np.ndarray, dark: np.ndarray, bright_colour: Sequence[float], dark_colour: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """One blend of bright and dark damage: strength is the stronger of the two, and each pixel moves
    toward the colour of whichever polarity dominates there. Returns `(image, mask)` as `damage.blend`.
    The per-pixel target covers only the damage's bounding box, the only part blend reads."""
    if not dark.any():
        return blend(img, bright, bright_colour)
    if not bright.any():
        return blend(img, dark, dark_colour)
    strength = np.maximum(bright, dark)
    rows, cols = damage_box(strength)
    use_bright = (bright[rows, cols] >= dark[rows, cols]).view(np.uint8)
    return blend(img, strength, palette_image(use_bright, [dark_colour, bright_colour]))


Feature = tuple[int, int, np.ndarray, np.ndarray]
"""One local piece of damage: top row, left column, strength (h, w) and colour (h, w, 3) in its box."""


def over(top: np.ndarray, top_colour: np.ndarray, under: np.ndarray, under_colour: np.ndarray):
    """Two damage layers as one: `top` (strength, colour) over `under`; returns (strength, colour).

    The strength is the exact composite; the colour is the dominant layer's, not their weighted mean. A mean
    would turn a pixel half black background, half white fibres into mid-grey: right for a photo, but a
    masked pixel that matches a mid-grey picture is damage no detector could see (see `damage`).
    """
    under = under * (1.0 - top)
    colour = np.where((top >= under)[..., None], top_colour, under_colour).astype(np.float32)
    return top + under, colour


def edge_cover(distance: np.ndarray, feather: float) -> np.ndarray:
    """Area coverage of a region from its signed distance (px, positive inside): a linear ramp `feather` px wide."""
    return np.clip(distance * np.float32(1.0 / feather) + np.float32(0.5), 0.0, 1.0)


def blend_features(img: np.ndarray, features: list[Feature]) -> tuple[np.ndarray, np.ndarray]:
    """One `damage.blend` of local `features` (the stronger wins where they overlap) within their union box, on the
    damaged pixels only where they are sparse there: local damage costs its own area, not the image's."""
    out = img.copy()
    mask = np.zeros(img.shape[:2], dtype=bool)
    if not features:
        return out, mask
    if len(features) == 1:
        y0, x0, strength, target = features[0]
    else:
        y0, x0 = min(f[0] for f in features), min(f[1] for f in features)
        y1, x1 = max(f[0] + f[2].shape[0] for f in features), max(f[1] + f[2].shape[1] for f in features)
        strength = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        target = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.float32)
        for top, left, s, t in features:
            box = (slice(top - y0, top - y0 + s.shape[0]), slice(left - x0, left - x0 + s.shape[1]))
            stronger = s > strength[box]
            np.copyto(target[box], t, where=stronger[..., None])
            np.copyto(strength[box], s, where=stronger)
    rows, cols = strength.shape
    if np.count_nonzero(strength) * 4 >= strength.size:  # dense: blend the whole box (gathers cost ~4x per pixel)
        box = (slice(y0, y0 + rows), slice(x0, x0 + cols))
        out[box], mask[box] = blend(img[box], strength, target)
        return out, mask
    ys, xs = np.nonzero(strength)
    blended, hit = blend(img[ys + y0, xs + x0][None], strength[ys, xs][None], target[ys, xs][None])
    out[ys + y0, xs + x0] = blended[0]
    mask[ys + y0, xs + x0] = hit[0]
    return out, mask


REFERENCE_SIDE = 512.0
"""Geometry in configs is given in pixels at this short side."""


def image_scale(shape: Sequence[int]) -> float:
    """How much larger than the 512 px reference the image is (short side / 512)."""
    return min(shape[0], shape[1]) / REFERENCE_SIDE


def rounded(values: dict) -> dict:
    """Floats rounded to 4 decimals: compact manifest lines (apply uses the rounded values)."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """A smooth random field of shape (H, W), zero mean and unit variance, with features about `cell` pixels wide.

    Gaussian noise on a coarse grid, enlarged with bicubic interpolation: cheap at any size.
    """
    h, w = shape
    gh, gw = max(2, int(np.ceil(h / cell)) + 3), max(2, int(np.ceil(w / cell)) + 3)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(cell), int(cell)  # skip the border rows, where bicubic extrapolation is biased
    field = np.ascontiguousarray(field[oy : oy + h, ox : ox + w])
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(field))  # one OpenCV pass for both
    field -= np.float32(mean)
    field *= np.float32(1.0 / std if std > 0 else 1.0)
    return field


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 4) -> np.ndarray:
    """Sum of `smooth_noise` octaves (each half the size and half the weight): ragged, natural edges."""
    total = np.zeros(shape, dtype=np.float32)
    weight, size = 1.0, cell
    for _ in range(octaves):
        if size < 1.0:
            break
        total += weight * smooth_noise(rng, shape, size)
        weight, size = weight * 0.5, size * 0.5
    std = float(total.std())
    return total / (std if std > 0 else 1.0)
