"""Tests for the degradation ops: the sample/apply contract, identity at zero strength,
monotonicity in strength, and the physical properties each op claims."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import data

from degrade.ops import OPS, get_op
from degrade.ops.base import luminance
from degrade.ops.blur import disk_kernel, motion_kernel
from degrade.ops.tone import tint

EXPECTED = {
    "gaussian_blur", "motion_blur", "defocus_blur",
    "gaussian_noise", "poisson_noise", "speckle_noise", "salt_pepper", "film_grain",
    "low_resolution", "jpeg",
    "fade", "color_cast", "sepia", "yellowing", "exposure", "grayscale",
}  # fmt: skip


def _small(rgb: np.ndarray, size: tuple[int, int] = (96, 80)) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)


IMAGES = {
    "astronaut": _small(data.astronaut()),
    "coffee": _small(data.coffee()),
    "chelsea": _small(data.chelsea(), (72, 64)),
}
ASTRONAUT = IMAGES["astronaut"]


def grey(value: float, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.float32)


def ramp(shape: tuple[int, int] = (128, 256)) -> np.ndarray:
    """A horizontal black-to-white ramp, grey on every channel."""
    row = np.linspace(0.0, 1.0, shape[1], dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (*shape, 3)))


def run(name: str, img: np.ndarray, **params: object) -> np.ndarray:
    return get_op(name).apply(img, dict(params))


def deviation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b)))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def strictly_increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def high_freq_energy(img: np.ndarray) -> float:
    return float(np.mean(cv2.Laplacian(luminance(img), cv2.CV_32F) ** 2))


# --- the contract, for every registered op ------------------------------------------------


def test_registry_has_every_op() -> None:
    assert set(OPS) >= EXPECTED
    for op in OPS.values():
        assert op.doc
        json.dumps(dict(op.defaults))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("image", sorted(IMAGES))
def test_contract(name: str, image: str) -> None:
    op = get_op(name)
    img = IMAGES[image]
    before = img.copy()
    for seed in range(3):
        params = op.sample(np.random.default_rng(seed), img.shape[:2], op.defaults)
        assert params == op.sample(np.random.default_rng(seed), img.shape[:2], op.defaults)
        replayed = json.loads(json.dumps(params))
        assert replayed == params

        out = op.apply(img, params)
        assert out.shape == img.shape
        assert out.dtype == np.float32
        assert out.flags.c_contiguous
        assert out is not img
        assert np.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0
        np.testing.assert_array_equal(img, before)  # input untouched
        np.testing.assert_array_equal(op.apply(img, params), out)
        np.testing.assert_array_equal(op.apply(img, replayed), out)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_odd_shapes(name: str) -> None:
    op = get_op(name)
    for shape in [(1, 1), (7, 3), (33, 50)]:
        img = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
        params = op.sample(np.random.default_rng(1), shape, op.defaults)
        out = op.apply(img, params)
        assert out.shape == img.shape and out.dtype == np.float32


def test_different_seeds_give_different_noise() -> None:
    for name in ["gaussian_noise", "poisson_noise", "speckle_noise", "salt_pepper", "film_grain"]:
        op = get_op(name)
        cfg = {**op.defaults, "amount": [0.05, 0.05]} if "amount" in op.defaults else op.defaults
        a = op.apply(ASTRONAUT, op.sample(np.random.default_rng(0), ASTRONAUT.shape[:2], cfg))
        b = op.apply(ASTRONAUT, op.sample(np.random.default_rng(1), ASTRONAUT.shape[:2], cfg))
        assert not np.array_equal(a, b), name


# --- identity at zero strength --------------------------------------------------------------

IDENTITY = [
    ("gaussian_blur", {"kernel": 0, "sigma": 0.0}),
    ("motion_blur", {"length": 1.0, "angle": 33.0}),
    ("motion_blur", {"length": 0.0, "angle": 0.0}),
    ("defocus_blur", {"radius": 0.0}),
    ("gaussian_noise", {"sigma": 0.0, "mono": False, "seed": 3}),
    ("poisson_noise", {"amount": 0.0, "seed": 3}),
    ("speckle_noise", {"sigma": 0.0, "seed": 3}),
    ("salt_pepper", {"amount": 0.0, "salt_vs_pepper": 0.5, "seed": 3}),
    ("film_grain", {"amount": 0.0, "size": 1.0, "color": 0.2, "seed": 3}),
    ("low_resolution", {"scale_x": 1.0, "scale_y": 1.0, "down": "bicubic", "up": "nearest"}),
    ("low_resolution", {"scale_x": 1.004, "scale_y": 0.996, "down": "area", "up": "bilinear"}),  # rounds to same size
    ("fade", {"contrast": 0.0, "saturation": 0.0, "black_lift": 0.0, "white_drop": 0.0}),
    ("color_cast", {"gain": [1.0, 1.0, 1.0], "offset": [0.0, 0.0, 0.0]}),
    ("sepia", {"amount": 0.0, "warmth": 0.8}),
    ("yellowing", {"amount": 0.0}),
    ("exposure", {"vignette": 0.0, "center": [0.5, 0.5], "gradient": 0.0, "angle": 10.0, "blotches": 0.0,
                  "grid": [[1.0, -1.0], [0.5, 2.0]]}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params"), IDENTITY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(IDENTITY)])
def test_identity_at_zero(name: str, params: dict) -> None:
    out = run(name, ASTRONAUT, **params)
    assert out is not ASTRONAUT
    np.testing.assert_array_equal(out, ASTRONAUT)


def test_fade_saturation_only_is_nearly_exact() -> None:
    """The fused affine form must not drift: tiny strengths stay within float32 rounding of the input."""
    out = run("fade", ASTRONAUT, contrast=0.0, saturation=1e-9, black_lift=0.0, white_drop=0.0)
    np.testing.assert_allclose(out, ASTRONAUT, atol=1e-6)


# --- monotone in strength ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "values", "extra"),
    [
        ("gaussian_blur", "sigma", [0.5, 1.0, 2.0, 4.0], {"kernel": 0}),
        ("motion_blur", "length", [2.0, 4.0, 8.0, 16.0], {"angle": 0.0}),
        ("motion_blur", "length", [1.5, 3.0, 6.0, 12.0], {"angle": 63.0}),
        ("defocus_blur", "radius", [1.0, 2.0, 4.0, 8.0], {}),
    ],
)
def test_blur_monotone(name: str, key: str, values: list[float], extra: dict) -> None:
    outs = [run(name, ASTRONAUT, **{key: v}, **extra) for v in values]
    assert strictly_increasing([deviation(o, ASTRONAUT) for o in outs])
    assert strictly_increasing([-high_freq_energy(o) for o in outs])


@pytest.mark.parametrize(
    ("name", "key", "values", "extra"),
    [
        ("gaussian_noise", "sigma", [0.01, 0.03, 0.1], {"mono": False}),
        ("gaussian_noise", "sigma", [0.01, 0.03, 0.1], {"mono": True}),
        ("poisson_noise", "amount", [0.01, 0.04, 0.15], {}),
        ("speckle_noise", "sigma", [0.02, 0.08, 0.3], {}),
        ("salt_pepper", "amount", [0.001, 0.01, 0.05], {"salt_vs_pepper": 0.5}),
        ("film_grain", "amount", [0.01, 0.04, 0.12], {"size": 1.2, "color": 0.2}),
    ],
)
def test_noise_monotone(name: str, key: str, values: list[float], extra: dict) -> None:
    errors = [mse(run(name, ASTRONAUT, **{key: v}, seed=5, **extra), ASTRONAUT) for v in values]
    assert strictly_increasing(errors)


def test_jpeg_monotone_in_quality() -> None:
    errors = [mse(run("jpeg", ASTRONAUT, quality=q), ASTRONAUT) for q in [95, 75, 40, 15, 5]]
    assert strictly_increasing(errors)


@pytest.mark.parametrize("down", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("up", ["nearest", "bilinear", "bicubic"])
def test_low_resolution_monotone_and_loses_detail(down: str, up: str) -> None:
    img = IMAGES["chelsea"]
    outs = [run("low_resolution", img, scale_x=s, scale_y=s, down=down, up=up) for s in [0.9, 0.7, 0.5, 0.3]]
    assert strictly_increasing([mse(o, img) for o in outs])
    half = outs[2]
    if up != "nearest":  # nearest adds blocky edges, which a Laplacian counts as detail
        assert high_freq_energy(half) < 0.5 * high_freq_energy(img)
    # Detail above the new Nyquist limit is gone: the result matches a reduced-size copy.
    small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    again = cv2.resize(small, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert mse(half, again) < mse(img, again)


def test_low_resolution_axes() -> None:
    stripes_v = np.zeros((64, 64, 3), np.float32)
    stripes_v[:, ::4] = 1.0  # vertical lines: detail along x only
    only_y = run("low_resolution", stripes_v, scale_x=1.0, scale_y=0.5, down="area", up="bilinear")
    only_x = run("low_resolution", stripes_v, scale_x=0.5, scale_y=1.0, down="area", up="bilinear")
    assert mse(only_y, stripes_v) < 1e-6  # shrinking along the lines loses nothing
    assert mse(only_x, stripes_v) > 0.01
    p = get_op("low_resolution").sample(
        np.random.default_rng(0), (64, 64), {**get_op("low_resolution").defaults, "independent_axes": False}
    )
    assert p["scale_x"] == p["scale_y"]


@pytest.mark.parametrize("down", ["area", "bilinear", "bicubic"])
def test_low_resolution_downscale_antialiases(down: str) -> None:
    """Pixel-wide stripes are above the new Nyquist limit: they must average to grey, not alias into bands."""
    stripes = np.zeros((60, 60, 3), np.float32)
    stripes[:, ::2] = 1.0
    out = run("low_resolution", stripes, scale_x=0.4, scale_y=1.0, down=down, up="bilinear")
    assert abs(float(out.mean()) - 0.5) < 0.03
    assert float(out.std()) < 0.1


def test_fade_monotone() -> None:
    img = ASTRONAUT
    zero = {"contrast": 0.0, "saturation": 0.0, "black_lift": 0.0, "white_drop": 0.0}
    steps = [0.1, 0.3, 0.6]
    lum_std = [float(luminance(run("fade", img, **{**zero, "contrast": c})).std()) for c in steps]
    assert strictly_increasing([-s for s in lum_std]) and lum_std[0] < float(luminance(img).std())

    def chroma(x: np.ndarray) -> float:
        return float(np.mean(np.abs(x - luminance(x)[..., None])))

    chromas = [chroma(run("fade", img, **{**zero, "saturation": s})) for s in steps]
    assert strictly_increasing([-c for c in chromas])
    np.testing.assert_allclose(luminance(run("fade", img, **{**zero, "saturation": 0.5})), luminance(img), atol=1e-5)

    lows = [float(run("fade", img, **{**zero, "black_lift": b}).min()) for b in [0.02, 0.05, 0.1]]
    highs = [float(run("fade", img, **{**zero, "white_drop": w}).max()) for w in [0.02, 0.05, 0.1]]
    assert strictly_increasing(lows) and strictly_increasing([-h for h in highs])
    ends = run("fade", ramp(), **{**zero, "black_lift": 0.06, "white_drop": 0.1})
    assert ends[0, 0, 0] == pytest.approx(0.06, abs=1e-6) and ends[0, -1, 0] == pytest.approx(0.9, abs=1e-6)


def test_fade_contrast_keeps_mean_luminance() -> None:
    zero = {"contrast": 0.0, "saturation": 0.0, "black_lift": 0.0, "white_drop": 0.0}
    out = run("fade", ASTRONAUT, **{**zero, "contrast": 0.4})
    assert float(luminance(out).mean()) == pytest.approx(float(luminance(ASTRONAUT).mean()), abs=1e-4)


def test_color_cast_levels_and_sampling() -> None:
    out = run("color_cast", ramp(), gain=[1.05, 1.0, 0.9], offset=[0.0, 0.03, 0.04])
    np.testing.assert_allclose(out[0, 0], [0.0, 0.03, 0.04], atol=1e-6)  # black -> offset
    np.testing.assert_allclose(out[0, -1], [1.0, 1.0, 0.9], atol=1e-6)  # white -> gain (clipped to 1)

    op = get_op("color_cast")
    warm = 0
    n = 400
    for seed in range(n):
        cfg = {**op.defaults, "strength": [0.05, 0.05], "shadow_strength": [0.03, 0.03]}
        p = op.sample(np.random.default_rng(seed), (8, 8), cfg)
        shift = np.array(p["gain"]) - 1.0
        assert np.abs(shift).max() == pytest.approx(0.05)
        assert np.abs(np.array(p["offset"])).max() == pytest.approx(0.03)
        assert abs(shift @ [0.299, 0.587, 0.114]) < 1e-9  # luma-neutral chroma shift
        warm += shift[0] > shift[2]
    assert 0.6 * n < warm < 0.95 * n  # mostly red/orange/yellow/magenta, but not only


def test_color_cast_crossover() -> None:
    op = get_op("color_cast")
    for probability, sign in [(1.0, -1.0), (0.0, 1.0)]:
        cfg = {
            **op.defaults,
            "strength": [0.05, 0.05],
            "shadow_strength": [0.03, 0.03],
            "crossover_probability": probability,
        }
        for seed in range(50):
            p = op.sample(np.random.default_rng(seed), (8, 8), cfg)
            assert sign * float(np.dot(np.array(p["gain"]) - 1.0, p["offset"])) > 0  # complementary vs same tint


def test_color_cast_strength_monotone() -> None:
    op = get_op("color_cast")
    devs = []
    for s in [0.02, 0.05, 0.1]:
        p = op.sample(np.random.default_rng(7), (8, 8), {**op.defaults, "strength": [s, s], "shadow_strength": [s, s]})
        devs.append(deviation(op.apply(grey(0.5, (16, 16)), p), grey(0.5, (16, 16))))
    assert strictly_increasing(devs)


@pytest.mark.parametrize("hue", [0.0, 37.0, 120.0, 200.0, 300.0])
def test_tint_is_luma_neutral(hue: float) -> None:
    t = tint(hue)
    assert abs(t @ [0.299, 0.587, 0.114]) < 1e-12 and np.abs(t).max() == pytest.approx(1.0)


def test_sepia_tones() -> None:
    g = ramp((4, 64))
    toned = [run("sepia", g, amount=1.0, warmth=w) for w in [0.0, 0.3, 0.6, 1.0]]
    spreads = [float(np.mean(t[..., 0] - t[..., 2])) for t in toned]
    assert spreads[0] == pytest.approx(0.0, abs=1e-6) and strictly_increasing(spreads)
    full = run("sepia", g, amount=1.0, warmth=1.0)
    np.testing.assert_allclose(full[:, 0], 0.0, atol=1e-6)  # black stays black
    np.testing.assert_allclose(full[:, -1], 1.0, atol=1e-6)  # white stays white
    mid = full[0, 32]
    assert mid[0] > mid[1] > mid[2]  # brown mid-tones
    assert abs(float(luminance(full).mean() - luminance(g).mean())) < 0.03  # roughly luma-neutral
    devs = [deviation(run("sepia", ASTRONAUT, amount=a, warmth=0.7), ASTRONAUT) for a in [0.2, 0.5, 1.0]]
    assert strictly_increasing(devs)


def test_yellowing() -> None:
    img = ASTRONAUT
    losses = [img.mean(axis=(0, 1)) - run("yellowing", img, amount=a).mean(axis=(0, 1)) for a in [0.1, 0.3, 0.6]]
    assert strictly_increasing([float(loss[2]) for loss in losses])
    for loss in losses:
        assert loss[2] > loss[1] > loss[0] >= 0  # blue most, then green, red barely
    g = ramp((4, 64))
    out = run("yellowing", g, amount=0.5)
    rel_loss_dark = 1 - out[0, 8, 2] / g[0, 8, 2]
    rel_loss_light = 1 - out[0, 60, 2] / g[0, 60, 2]
    assert rel_loss_light > 1.5 * rel_loss_dark


def test_exposure() -> None:
    base = {"vignette": 0.0, "center": [0.5, 0.5], "gradient": 0.0, "angle": 0.0, "blotches": 0.0,
            "grid": np.random.default_rng(0).standard_normal((4, 4)).tolist()}  # fmt: skip
    g = grey(0.5, (64, 96))
    ratios = []
    for v in [0.1, 0.3, 0.6]:
        out = run("exposure", g, **{**base, "vignette": v})
        assert out[32, 48, 0] > 0.49  # centre barely touched
        ratios.append(float(out[0, 0, 0] / out[32, 48, 0]))
    assert strictly_increasing([-r for r in ratios])
    assert ratios[1] == pytest.approx(0.7, abs=0.02)  # corner darkening matches `vignette`
    # A gradient of 1 stop along x (angle 0): right edge about twice as bright as the left.
    out = run("exposure", grey(0.3, (64, 96)), **{**base, "gradient": 1.0})
    assert float(out[:, -1].mean() / out[:, 0].mean()) == pytest.approx(2.0, rel=0.05)
    assert float(out[0, :, 0].std()) > 0 and np.allclose(out[:, 10], out[0, 10])  # varies along x only
    stds = [
        float(np.log2(run("exposure", grey(0.3, (64, 96)), **{**base, "blotches": b})).std()) for b in [0.05, 0.1, 0.2]
    ]
    assert strictly_increasing(stds)
    blotchy = run("exposure", grey(0.3, (64, 96)), **{**base, "blotches": 0.3})
    assert high_freq_energy(blotchy) < 1e-5  # smooth, low frequency


def test_grayscale() -> None:
    out = run("grayscale", ASTRONAUT)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(out[..., 0], luminance(ASTRONAUT), atol=1e-6)


# --- specific physical properties ------------------------------------------------------------


def test_kernels_normalised() -> None:
    for length in [1.5, 3.0, 7.3, 20.0]:
        for angle in [0.0, 30.0, 45.0, 90.0, 170.0]:
            k = motion_kernel(length, angle)
            assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
            assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    for radius in [0.5, 1.0, 2.7, 10.0]:
        k = disk_kernel(radius)
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(k, k.T, atol=1e-7)
        np.testing.assert_allclose(k, k[::-1], atol=1e-7)


def test_motion_blur_direction() -> None:
    dot = np.zeros((41, 41, 3), np.float32)
    dot[20, 20] = 1.0
    for angle, axis in [(0.0, 1), (90.0, 0)]:
        out = run("motion_blur", dot, length=9.0, angle=angle)[..., 0]
        along = out[20, :] if axis == 1 else out[:, 20]
        across = out[:, 20] if axis == 1 else out[20, :]
        assert np.count_nonzero(along > 1e-4) >= 9 and np.count_nonzero(across > 1e-4) == 1
    diag = run("motion_blur", dot, length=9.0, angle=45.0)[..., 0]
    assert diag[17, 23] > 0.05 and diag[23, 17] > 0.05 and diag[17, 17] < 1e-3  # up-right: 45 deg counter-clockwise


def test_defocus_blur_spreads_as_disk() -> None:
    dot = np.zeros((41, 41, 3), np.float32)
    dot[20, 20] = 1.0
    out = run("defocus_blur", dot, radius=5.0)[..., 0]
    assert out[20, 24] > 0.5 * out[20, 20]  # flat top inside the disk, unlike a Gaussian
    assert out[20, 27] == 0.0 and out[27, 20] == 0.0
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-4)


def test_gaussian_noise_mono_is_identical_across_channels() -> None:
    img = grey(0.5)
    out = run("gaussian_noise", img, sigma=0.05, mono=True, seed=1)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    colour = run("gaussian_noise", img, sigma=0.05, mono=False, seed=1)
    assert float(np.abs(colour[..., 0] - colour[..., 1]).mean()) > 0.01
    assert float((out - img).std()) == pytest.approx(0.05, rel=0.05)


def test_poisson_noise_is_shot_noise() -> None:
    amount = 0.05
    stds = [float((run("poisson_noise", grey(v), amount=amount, seed=2) - v).std()) for v in [0.1, 0.4, 0.9]]
    assert strictly_increasing(stds)  # absolute noise grows with signal
    assert stds[2] == pytest.approx(amount * np.sqrt(0.9), rel=0.1)  # std = amount * sqrt(value)
    assert float(run("poisson_noise", grey(0.0), amount=amount, seed=2).max()) == 0.0


def test_speckle_is_multiplicative() -> None:
    out = run("speckle_noise", ramp(), sigma=0.2, seed=4)
    np.testing.assert_array_equal(out[:, 0], 0.0)  # black stays black
    err = out - ramp()
    assert float(err[:, 40:60].std()) < float(err[:, 150:170].std())


def test_salt_pepper_fraction_and_channels() -> None:
    img = grey(0.5, (200, 200))
    out = run("salt_pepper", img, amount=0.05, salt_vs_pepper=0.7, seed=9)
    changed = np.any(out != img, axis=2)
    assert changed.mean() == pytest.approx(0.05, rel=0.15)
    salt = np.all(out == 1.0, axis=2)
    pepper = np.all(out == 0.0, axis=2)
    np.testing.assert_array_equal(changed, salt | pepper)  # whole pixels, all channels
    assert salt.sum() / changed.sum() == pytest.approx(0.7, abs=0.05)


def test_salt_pepper_per_channel_makes_coloured_specks() -> None:
    img = grey(0.5, (200, 200))
    out = run("salt_pepper", img, amount=0.05, salt_vs_pepper=0.7, per_channel=True, seed=9)
    hit = out != img
    assert hit.mean() == pytest.approx(0.05, rel=0.15)  # the fraction applies per channel value
    partly = np.any(hit, axis=2) & ~np.all(hit, axis=2)
    assert partly.sum() > 0.8 * np.any(hit, axis=2).sum()  # mostly single-channel specks


def _channel_corr(noise: np.ndarray) -> float:
    c = np.corrcoef(noise.reshape(-1, 3).T)
    return float((c[0, 1] + c[0, 2] + c[1, 2]) / 3)


def _lag1_corr(field: np.ndarray) -> float:
    f = field - field.mean()
    return float((f[:, 1:] * f[:, :-1]).mean() / (f * f).mean())


@pytest.mark.parametrize("size", [1.0, 2.0, 6.0])
def test_film_grain_correlation(size: float) -> None:
    img = grey(0.5, (160, 160))
    grain = run("film_grain", img, amount=0.05, size=size, color=0.2, seed=3) - img
    white = run("gaussian_noise", img, sigma=0.05, mono=False, seed=3) - img
    assert _channel_corr(grain) > 0.9 and abs(_channel_corr(white)) < 0.1
    assert _lag1_corr(grain[..., 1]) > 0.5 and abs(_lag1_corr(white[..., 1])) < 0.1
    assert float(grain.std()) == pytest.approx(0.05, rel=0.1)  # `amount` is the std at mid-grey
    mono = run("film_grain", img, amount=0.05, size=size, color=0.0, seed=3) - img
    assert _channel_corr(mono) > 0.999


def test_film_grain_coarser_with_size() -> None:
    img = grey(0.5, (160, 160))
    corr = [_lag1_corr((run("film_grain", img, amount=0.05, size=s, color=0.0, seed=1) - img)[..., 0])
            for s in [0.5, 1.0, 2.0, 4.0]]  # fmt: skip
    assert strictly_increasing(corr)


def test_film_grain_strongest_in_midtones() -> None:
    img = ramp((256, 256))
    grain = (run("film_grain", img, amount=0.05, size=1.0, color=0.0, seed=6) - img)[..., 0]
    mid = float(grain[:, 115:141].std())
    dark = float(grain[:, 2:8].std())
    light = float(grain[:, 248:254].std())
    assert mid > 2 * dark and mid > 2 * light
    assert mid == pytest.approx(0.05, rel=0.15)


def test_jpeg_keeps_colours_in_place() -> None:
    """Catches an RGB/BGR swap: a swapped encode turns red blue and subsamples the wrong chroma."""
    for channel in range(3):
        img = np.zeros((32, 32, 3), np.float32)
        img[..., channel] = 1.0
        out = run("jpeg", img, quality=50).mean(axis=(0, 1))
        assert out[channel] > 0.9
        assert np.delete(out, channel).max() < 0.1


def test_jpeg_blocks_and_never_identity() -> None:
    out = run("jpeg", ASTRONAUT, quality=100)
    assert 0 < mse(out, ASTRONAUT) < 1e-3
    # Chroma is subsampled 4:2:0: a 1-px colour checkerboard loses its colour but keeps its luma.
    checker = np.zeros((32, 32, 3), np.float32)
    checker[::2, ::2] = checker[1::2, 1::2] = [1.0, 0.0, 0.0]
    checker[1::2, ::2] = checker[::2, 1::2] = [0.0, 0.0, 1.0]
    out = run("jpeg", checker, quality=100)
    assert float(np.abs(out[..., 0] - out[..., 2]).mean()) < 0.5
