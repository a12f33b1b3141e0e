"""Restorer: tiling gives the single-pass result, shapes and modes are kept, inputs of every kind work."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from skimage import data  # noqa: E402

from restore.config import model_config  # noqa: E402
from restore.export import build_networks  # noqa: E402
from restore.pipeline import RestoreError, Restorer, dilate  # noqa: E402
from restore.tiling import pad_to_multiple, receptive_radius, run_tiled, windows  # noqa: E402


def _random_restorer(
    max_pixels: int = 10**7, config: str = "tiny", seed: int = 0, channels_last: bool | None = None
) -> Restorer:
    torch.manual_seed(seed)
    model = model_config(config)
    return Restorer(model, build_networks(model), torch.device("cpu"), max_pixels, channels_last)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.chelsea()[:200, :300]


def test_windows_partition_the_image() -> None:
    tiles = windows(100, 70, core=32, halo=8)
    cover = np.zeros((100, 70), dtype=int)
    for tile in tiles:
        cover[tile.core_start[0] : tile.core_stop[0], tile.core_start[1] : tile.core_stop[1]] += 1
        assert tile.start[0] == max(0, tile.core_start[0] - 8) and tile.stop[1] == min(70, tile.core_stop[1] + 8)
    assert (cover == 1).all()


def test_tiled_networks_equal_the_single_pass(photo: np.ndarray) -> None:
    """Each tiled network (global norm statistics, measured halos) matches the whole-image pass in float."""
    restorer = _random_restorer()
    nets = restorer.nets
    x = pad_to_multiple(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1, 8)
    with torch.no_grad():
        latent = nets["vae_a"].encode(x)
        cases = [
            (nets["vae_a"].encode, nets["vae_a"], x, 8),
            (nets["vae_b"].decode, nets["vae_b"], latent, 1),
            (lambda t: nets["detector"](t.mean(1, keepdim=True)), nets["detector"], x, 8),
        ]
    for net, module, inputs, stride in cases:
        halo = receptive_radius(net, module, inputs.shape[1], stride, size=64 if stride == 1 else 128)
        with torch.no_grad():
            whole = net(inputs)
            tiled = run_tiled(net, module, inputs, core=8 * stride, halo=halo)
        assert len(windows(*inputs.shape[-2:], 8 * stride, halo)) > 4
        torch.testing.assert_close(tiled, whole, atol=2e-5, rtol=1e-4)


def test_too_small_a_halo_shows(photo: np.ndarray) -> None:
    """The equality above is not automatic: tiles without enough context differ from the single pass."""
    vae = _random_restorer().nets["vae_a"]
    x = pad_to_multiple(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1, 8)
    with torch.no_grad():
        assert (run_tiled(vae.encode, vae, x, core=32, halo=0) - vae.encode(x)).abs().max() > 1e-2


def test_restorer_tiles_large_photos_with_the_same_result(photo: np.ndarray) -> None:
    whole = _random_restorer().restore(photo, scratches="on")
    tiled_restorer = _random_restorer(max_pixels=160 * 160)
    tiled = tiled_restorer.restore(photo, scratches="on")
    assert tiled_restorer._halos  # the tiled path ran
    assert np.abs(tiled.image.astype(int) - whole.image).max() <= 1  # float noise may flip a rounding
    np.testing.assert_allclose(tiled.probability, whole.probability, atol=1e-5)


@pytest.mark.parametrize(("config", "max_pixels"), [("small", 10**7), ("tiny", 160 * 160)])
def test_channels_last_layout_changes_only_float_rounding(
    photo: np.ndarray, config: str, max_pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU default (channels-last, for speed) restores as the contiguous layout does: whole, in tiles and
    through the partial nonlocal block (a detected scratch)."""
    default = _random_restorer(max_pixels, config)
    contiguous = _random_restorer(max_pixels, config, channels_last=False)
    kernels = [p for p in default.nets["vae_a"].parameters() if p.ndim == 4 and min(p.shape) > 1]
    assert all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in kernels)
    scratch = torch.zeros(1, 1, 200, 304)
    scratch[..., 100, 20:200] = 1
    for restorer in (default, contiguous):
        monkeypatch.setattr(restorer, "_probability", lambda x: scratch)
    a, b = default.restore(photo, scratches="on"), contiguous.restore(photo, scratches="on")
    assert a.mask.any() and bool(default._halos) == (max_pixels < photo.shape[0] * photo.shape[1])
    assert np.abs(a.image.astype(int) - b.image).max() <= 1


@pytest.mark.parametrize("shape", [(37, 53, 3), (8, 8, 3), (64, 1, 3), (50, 61)])
def test_any_size_and_gray_keep_their_shape(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    result = _random_restorer().restore(image)
    assert result.image.shape == shape and result.image.dtype == np.uint8
    assert result.mask is not None and result.mask.shape == shape[:2]


def test_scratches_modes(photo: np.ndarray) -> None:
    restorer = _random_restorer()
    off = restorer.restore(photo, scratches="off")
    assert off.mask is None and off.probability is None
    on = restorer.restore(photo, scratches="on")
    assert on.probability is not None and on.probability.shape == photo.shape[:2]
    with pytest.raises(RestoreError, match="auto, on or off"):
        restorer.restore(photo, scratches="maybe")  # type: ignore[arg-type]


def test_mask_switches_the_partial_nonlocal_block(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A detected mask reaches the mapping (holes filled by attention); with none, the block is skipped."""
    restorer = _random_restorer()
    seen: list[object] = []
    mapping = restorer.nets["mapping"]
    original = mapping.forward
    monkeypatch.setattr(mapping, "forward", lambda z, mask=None: seen.append(mask) or original(z, mask))
    monkeypatch.setattr(restorer, "_probability", lambda x: torch.zeros(1, 1, *x.shape[-2:]))
    assert not restorer.restore(photo, scratches="on").mask.any() and seen[-1] is None
    scratch = torch.zeros(1, 1, 200, 304)
    scratch[..., 100, 20:200] = 1
    monkeypatch.setattr(restorer, "_probability", lambda x: scratch)
    result = restorer.restore(photo, scratches="auto")
    assert seen[-1] is not None and result.mask[99:102, 30].all() and result.mask.sum() == 3 * (180 + 2)


def test_dilate_grows_by_radius() -> None:
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    assert dilate(mask, 1).sum() == 9 and dilate(mask, 0).sum() == 1


def test_bad_arguments_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(RestoreError, match="no such model file"):
        Restorer.load(tmp_path / "missing.safetensors")
    with pytest.raises(RestoreError, match="uint8"):
        _random_restorer().restore(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(RestoreError, match="max_pixels"):
        _random_restorer(max_pixels=10)
