"""Op-specific properties of the losses (holes, torn edges) and the spots and stains (dust, foxing, water
stains, smudges): what each models must show in its pixels and masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from degrade.ops import OPS, damage
from degrade.ops.base import luminance
from degrade.ops.damage import blend_features


def grey(value: float, shape: tuple[int, int]) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.float32)


def textured(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth random colour picture in [0.2, 0.8]: detail for stains to show through."""
    field = np.stack([damage.smooth_noise(np.random.default_rng(seed + c), shape, 12.0) for c in range(3)], axis=-1)
    return np.clip(0.5 + 0.1 * field, 0.2, 0.8).astype(np.float32)


def draw(name: str, seed: int, shape: tuple[int, int], **overrides) -> dict:
    op = OPS[name]
    return op.sample(np.random.default_rng(seed), shape, {**op.defaults, **overrides})


def render(name: str, img: np.ndarray, seed: int, **overrides) -> tuple[np.ndarray, np.ndarray]:
    return OPS[name].apply(img, draw(name, seed, img.shape[:2], **overrides))


# --- holes and torn edges ---------------------------------------------------------------


def test_holes_show_warm_bright_paper() -> None:
    for seed in range(4):
        out, mask = render("holes", grey(0.15, (192, 192)), seed, count=[2, 2], size=[0.06, 0.1])
        assert mask.mean() > 0.01
        core = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # away from rims and edges
        paper = out[core]
        assert paper.mean() > 0.8, "lost emulsion shows the paper base"
        assert (paper[:, 0] >= paper[:, 2] - 1e-3).all(), "paper is off-white and warm, never blue"
        assert paper.std(axis=0).max() > 0.002, "paper has a faint texture, not a flat fill"


def test_holes_scale_with_the_image() -> None:
    params = draw("holes", 7, (256, 256), count=[3, 3])
    small = OPS["holes"].apply(grey(0.5, (256, 256)), params)[1].mean()
    large = OPS["holes"].apply(grey(0.5, (512, 512)), params)[1].mean()
    assert small > 0 and large == pytest.approx(small, rel=0.2), "sizes are fractions of the short side"


def test_torn_edges_enter_from_the_border() -> None:
    for seed in range(8):
        shape = (160, 224)
        _, mask = render("torn_edges", grey(0.5, shape), seed)
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert border.any(), "damage touches the image border"
        ys, xs = np.nonzero(mask)
        depth = np.minimum.reduce([ys, xs, shape[0] - 1 - ys, shape[1] - 1 - xs])
        assert depth.max() < 0.5 * min(shape), "damage stays near the border"


def test_torn_corner_shows_the_scanner_background_framed_by_paper_fibres() -> None:
    params = draw("torn_edges", 1, (256, 256), corners=[1, 1], chipped_edges=[0, 0], worn_edges=[0, 0])
    params["features"][0].update(corner="top_left", a=0.15, b=0.15)
    params["background"] = [0.05, 0.05, 0.05]
    out, mask = OPS["torn_edges"].apply(grey(0.5, (256, 256)), params)
    assert np.allclose(out[:4, :4], 0.05, atol=0.01), "beyond the tear: the dark scanner bed"
    assert mask[:4, :4].all()
    assert (out[mask].mean(axis=1) > 0.8).any(), "a bright band of torn paper fibres along the tear"
    params["background"] = None
    out, _ = OPS["torn_edges"].apply(grey(0.5, (256, 256)), params)
    assert out[:4, :4].min() > 0.8, "without a background the loss shows paper base"


# --- dust -------------------------------------------------------------------------------


def test_dust_count_scales_with_area_not_resolution() -> None:
    def mean_specks(shape: tuple[int, int]) -> float:
        return np.mean([draw("dust", seed, shape, density=[400, 400])["specks"] for seed in range(40)])

    square, wide, sharp = mean_specks((256, 256)), mean_specks((256, 512)), mean_specks((1024, 1024))
    assert square == pytest.approx(400 * 0.262144, rel=0.1), "density is per megapixel at 512 px short side"
    assert wide == pytest.approx(2 * square, rel=0.1), "a print twice as wide collects twice the dust"
    assert sharp == pytest.approx(square, rel=0.1), "the same print scanned finer has the same specks"


def test_dust_specks_are_small_and_take_both_polarities() -> None:
    img = grey(0.5, (512, 512))
    out, mask = render("dust", img, 3, density=[800, 800], fibres=[0, 0], bright_fraction=[0.5, 0.5])
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    assert count > 50 and areas.max() <= 16, "specks are 0.5-3 px across at 512"
    change = luminance(out) - luminance(img)
    assert (change[mask] > 0.2).sum() > 20 and (change[mask] < -0.2).sum() > 20, "white and dark specks"
    dark_only, _ = render("dust", img, 3, bright_fraction=[0.0, 0.0], fibres=[2, 2])
    assert (luminance(dark_only) <= 0.5 + 1e-6).all(), "bright_fraction 0: dirt only"


def test_dust_fibres_are_thin_curves() -> None:
    img = grey(0.5, (512, 512))
    _, mask = render("dust", img, 5, density=[0, 0], fibres=[3, 3])
    assert mask.sum() > 20, "hairs are drawn"
    thick = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    assert thick.sum() < 0.2 * mask.sum(), "fibres are about a pixel wide"


# --- foxing and water stains -----------------------------------------------------------


@pytest.mark.parametrize("name", ["foxing", "water_stain"])
def test_stains_tint_the_picture_rather_than_paint_over_it(name: str) -> None:
    img = textured((192, 192))
    params = draw(name, 2, img.shape[:2])
    out, mask = OPS[name].apply(img, params)
    half, _ = OPS[name].apply(img * np.float32(0.5), params)
    assert mask.any()
    np.testing.assert_allclose(half, out * 0.5, atol=1e-5, err_msg="a multiplicative tint: detail shows through")


def test_foxing_is_rust_brown() -> None:
    out, mask = render("foxing", grey(0.95, (256, 256)), 4, clusters=[3, 3])
    spots = out[mask]
    assert len(spots) > 20
    r, g, b = spots.mean(axis=0)
    assert r > g > b and b < 0.85, "brown, darker in blue"


def test_water_stain_has_a_dark_masked_rim_and_a_faint_unmasked_interior() -> None:
    img = grey(0.9, (256, 256))
    params = draw("water_stain", 0, img.shape[:2], rings=[1, 1])
    params["stains"][0].update(x=0.5, y=0.5, radius=0.25)
    out, mask = OPS["water_stain"].apply(img, params)
    change = np.abs(out - img).max(axis=2)
    faint = (change > 0.005) & ~mask
    assert faint.sum() > 5 * mask.sum() > 0, "the wetted interior is discoloured, below the mask threshold"
    rim, interior = luminance(out)[mask], luminance(out)[faint]
    assert rim.mean() < interior.mean() - 0.1, "the tide line is darker than the interior"
    yellowing = out[faint]
    assert (yellowing[:, 2] < yellowing[:, 0]).mean() > 0.95, "the interior yellows (blue drops most)"


# --- smudges ----------------------------------------------------------------------------


def test_smudge_masks_only_the_strong_thin_ridges() -> None:
    img = grey(0.5, (512, 512))
    out, mask = render("smudge", img, 1, count=[1, 1], opacity=[0.45, 0.45])
    touched = np.abs(out - img).max(axis=2) > 1e-3
    assert 0 < mask.sum() < 0.5 * touched.sum(), "a low-opacity haze with only the stronger ridges masked"
    thick = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    assert thick.sum() < 0.25 * mask.sum(), "ridges are thin (2-4 px apart at 512)"


def test_smudge_ridges_fade_to_haze_when_finer_than_pixels() -> None:
    img = grey(0.5, (64, 64))
    params = draw("smudge", 0, img.shape[:2], count=[1, 1], opacity=[0.45, 0.45])
    out, _ = OPS["smudge"].apply(img, params)
    change = np.abs(out - img).max(axis=2)
    assert change.max() < 0.2 * 0.5, "sub-pixel ridges average out instead of aliasing into strong moire"


# --- the shared blend ---------------------------------------------------------------------


@pytest.mark.parametrize("spread", [10, 150])
def test_blend_features_matches_one_blend_over_the_image(spread: int) -> None:
    """Dense (one box) and sparse (gathered pixels) paths give what a full-image blend gives."""
    rng = np.random.default_rng(0)
    img = rng.random((200, 200, 3), dtype=np.float32)
    features, strength, target = [], np.zeros((200, 200), np.float32), np.zeros((200, 200, 3), np.float32)
    for top, left in ((5, 5), (5 + spread // 3, 5 + spread)):
        s = rng.random((30, 40), dtype=np.float32)
        t = rng.random((30, 40, 3), dtype=np.float32)
        features.append((top, left, s, t))
        box = (slice(top, top + 30), slice(left, left + 40))
        stronger = s > strength[box]
        strength[box][stronger], target[box][stronger] = s[stronger], t[stronger]
    out, mask = blend_features(img, features)
    want, want_mask = damage.blend(img, strength, target)
    np.testing.assert_allclose(out, want, atol=1e-6)
    np.testing.assert_array_equal(mask, want_mask)
