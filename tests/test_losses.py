"""Tests for the restoration losses: SSIM against scikit-image, focal loss against BCE, the LSGAN optima,
feature matching and latent L1 gradients, and the opt-in VGG19 perceptual loss's weight loading."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

torch = pytest.importorskip("torch")
F = torch.nn.functional

from restore.losses import (  # noqa: E402
    VGG19_TAPS,
    PerceptualLoss,
    VGG19Features,
    dice_loss,
    feature_matching,
    focal_loss,
    latent_l1,
    lsgan_d,
    lsgan_g,
    ssim,
    ssim_loss,
)


def _to_unit(img: np.ndarray, size: tuple[int, int] = (72, 56)) -> np.ndarray:
    """uint8 (H, W[, C]) -> float64 (H, W, C) in [-1, 1], shrunk."""
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float64) / 127.5 - 1
    return img[..., None] if img.ndim == 2 else img


def _image_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    astronaut, camera, coffee = _to_unit(data.astronaut()), _to_unit(data.camera()), _to_unit(data.coffee())
    return {
        "random": (rng.uniform(-1, 1, (40, 48, 3)), rng.uniform(-1, 1, (40, 48, 3))),
        "random_correlated": (
            base := rng.uniform(-1, 1, (33, 37, 2)),
            0.7 * base + 0.3 * rng.uniform(-1, 1, base.shape),
        ),
        "astronaut_noisy": (astronaut, np.clip(astronaut + rng.normal(0, 0.2, astronaut.shape), -1, 1)),
        "camera_blurred": (camera, cv2.GaussianBlur(camera, (7, 7), 2.0)[..., None]),
        "coffee_vs_astronaut": (coffee, astronaut),
    }


@pytest.mark.parametrize("name", list(_image_pairs()))
def test_ssim_matches_scikit_image(name):
    x, y = _image_pairs()[name]
    expected = structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0, channel_axis=-1
    )
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    assert abs(ssim(as_tensor(x), as_tensor(y)).item() - expected) < 1e-5
    # data_range scales the constants with the images: halved images with data_range 1 give the same index.
    assert abs(ssim(as_tensor(x) / 2, as_tensor(y) / 2, data_range=1.0).item() - expected) < 1e-5


def test_ssim_of_identical_images_is_one_and_loss_trains():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 24, 20) * 2 - 1
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.3 * torch.randn_like(x)).requires_grad_()
    loss = ssim_loss(y, x)
    assert 0 < loss.item() < 2
    loss.backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError, match="window"):
        ssim(torch.zeros(1, 3, 8, 32), torch.zeros(1, 3, 8, 32))
    with pytest.raises(ValueError, match="one shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))


def _logits_and_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8) * 4
    return logits, (torch.rand_like(logits) < 0.2).float()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_with_gamma_zero_is_bce(reduction):
    logits, target = _logits_and_targets()
    soft = torch.rand_like(target)
    for t in (target, soft):
        expected = F.binary_cross_entropy_with_logits(logits, t, reduction=reduction)
        assert torch.equal(focal_loss(logits, t, gamma=0.0, reduction=reduction), expected)
    weight = torch.tensor(5.0)
    expected = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight, reduction=reduction)
    assert torch.equal(focal_loss(logits, target, gamma=0.0, pos_weight=5.0, reduction=reduction), expected)


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([4.0, -4.0, 0.0])  # confident correct, confident wrong, unsure
    target = torch.ones(3)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    focal = focal_loss(logits, target, gamma=2.0, reduction="none")
    p = torch.sigmoid(logits)
    torch.testing.assert_close(focal, bce * (1 - p) ** 2)
    ratio = focal / bce
    assert ratio[0] < 1e-3 and ratio[1] > 0.96 and ratio[2] == pytest.approx(0.25)
    # The same holds for negatives: a confident correct negative is nearly ignored.
    assert focal_loss(torch.tensor([-4.0]), torch.zeros(1), gamma=2.0) < 1e-3 * F.binary_cross_entropy_with_logits(
        torch.tensor([-4.0]), torch.zeros(1)
    )


def test_focal_alpha_and_pos_weight():
    logits, target = _logits_and_targets()
    base = focal_loss(logits, target, reduction="none")
    balanced = focal_loss(logits, target, alpha=0.25, reduction="none")
    torch.testing.assert_close(balanced, base * torch.where(target > 0, 0.25, 0.75))
    weighted = focal_loss(logits, target, pos_weight=3.0, reduction="none")
    torch.testing.assert_close(weighted, base * torch.where(target > 0, 3.0, 1.0))
    with pytest.raises(ValueError, match="reduction"):
        focal_loss(logits, target, reduction="average")


def test_dice_is_one_minus_soft_f1_pooled_over_the_batch():
    logits, target = _logits_and_targets()
    p = torch.sigmoid(logits)
    expected = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    torch.testing.assert_close(dice_loss(logits, target), expected)
    # Near-perfect masks score ~0, inverted ones ~1; an empty batch with nothing predicted scores 0.
    assert dice_loss(40 * (2 * target - 1), target) < 1e-3
    assert dice_loss(-40 * (2 * target - 1), target) > 0.99
    assert dice_loss(torch.full((1, 1, 8, 8), -40.0), torch.zeros(1, 1, 8, 8)) < 1e-6


def test_dice_is_not_diluted_by_background_unlike_mean_focal():
    """Missed scratches cost Dice the same however much easy background surrounds them, while the mean focal
    loss shrinks with the photo's area: why Dice helps a detector of thin scratches that cover ~1 %."""
    small, large = torch.full((1, 1, 10, 10), -12.0), torch.full((1, 1, 100, 100), -12.0)
    small_target, large_target = torch.zeros_like(small), torch.zeros_like(large)
    for logits, target in ((small, small_target), (large, large_target)):
        logits[0, 0, 0, :4] = -1.0  # four missed scratch pixels at p = 0.27
        target[0, 0, 0, :4] = 1
    assert dice_loss(large, large_target) == pytest.approx(dice_loss(small, small_target).item(), rel=0.05)
    assert focal_loss(large, large_target) < 0.02 * focal_loss(small, small_target)


def test_focal_is_stable_for_extreme_logits():
    logits = torch.tensor([-200.0, 200.0, -200.0, 200.0], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = focal_loss(logits, target, gamma=2.0, reduction="none")
    torch.testing.assert_close(loss.detach(), torch.tensor([200.0, 200.0, 0.0, 0.0]))
    loss.sum().backward()
    torch.testing.assert_close(logits.grad, torch.tensor([-1.0, 1.0, 0.0, 0.0]))


def _outputs(logits_values, shapes=((2, 1, 6, 6), (2, 1, 3, 3))):
    """Discriminator outputs: per scale, two random feature maps then constant logits."""
    return [
        [torch.randn(2, 4, 5, 5), torch.randn(2, 8, 3, 3), torch.full(shape, value)]
        for value, shape in zip(logits_values, shapes, strict=True)
    ]


def test_lsgan_losses_vanish_at_their_optima_only():
    torch.manual_seed(0)
    assert lsgan_d(_outputs([1.0, 1.0]), _outputs([0.0, 0.0])).item() == 0.0
    assert lsgan_g(_outputs([1.0, 1.0])).item() == 0.0
    # Exact constants: D wrong on both halves at every scale gives 0.5 * (1 + 1); G fooled nowhere gives 1.
    assert lsgan_d(_outputs([0.0, 0.0]), _outputs([1.0, 1.0])).item() == pytest.approx(1.0)
    assert lsgan_g(_outputs([0.0, 0.0])).item() == pytest.approx(1.0)
    # Scales are averaged: one wrong scale of two halves the loss.
    assert lsgan_d(_outputs([1.0, 0.0]), _outputs([0.0, 0.0])).item() == pytest.approx(0.25)
    assert lsgan_g(_outputs([1.0, 0.5])).item() == pytest.approx(0.125)
    assert lsgan_d(_outputs([0.9, 1.0]), _outputs([0.0, 0.1])).item() > 0
    with pytest.raises(ValueError, match="scales"):
        lsgan_d(_outputs([1.0, 1.0]), _outputs([0.0], shapes=((2, 1, 6, 6),)))


def test_feature_matching_weights_layers_and_scales_and_spares_real():
    # Per scale two feature layers whose fake-real L1 is known (scale 0: 1 and 3, scale 1: 0 and 2), then logits
    # that differ wildly but must not count.
    offsets = [(1.0, 3.0), (0.0, 2.0)]
    real_leaves = [[torch.zeros(1, 2, 4, 4, requires_grad=True) for _ in pair] for pair in offsets]
    fake_leaves = [[torch.zeros(1, 2, 4, 4, requires_grad=True) for _ in pair] for pair in offsets]
    real = [[leaf * 1 for leaf in leaves] + [torch.zeros(1, 1, 2, 2)] for leaves in real_leaves]
    fake = [
        [leaf + offset for leaf, offset in zip(leaves, pair, strict=True)] + [torch.full((1, 1, 2, 2), 9.0)]
        for leaves, pair in zip(fake_leaves, offsets, strict=True)
    ]
    loss = feature_matching(real, fake)
    assert loss.item() == pytest.approx(((1 + 3) / 2 + (0 + 2) / 2) / 2)
    loss.backward()
    assert all(leaf.grad is None for leaves in real_leaves for leaf in leaves)
    assert all(leaf.grad is not None for leaves in fake_leaves for leaf in leaves)
    assert feature_matching(real, real).item() == 0.0


def test_latent_l1_trains_the_mapping_only():
    torch.manual_seed(0)
    mapped = torch.randn(2, 8, 4, 4, requires_grad=True)
    target = torch.randn(2, 8, 4, 4, requires_grad=True)
    loss = latent_l1(mapped, target)
    assert loss.item() == pytest.approx(F.l1_loss(mapped, target).item())
    loss.backward()
    assert target.grad is None and mapped.grad.abs().sum() > 0
    assert latent_l1(target, target).item() == 0.0


# torchvision's vgg19().features up to relu5_1: conv indices and output channels.
VGG19_CONVS = {
    0: 64,
    2: 64,
    5: 128,
    7: 128,
    10: 256,
    12: 256,
    14: 256,
    16: 256,
    19: 512,
    21: 512,
    23: 512,
    25: 512,
    28: 512,
}


def test_vgg19_features_match_torchvision_layout():
    keys = {name: tuple(t.shape) for name, t in VGG19Features().state_dict().items()}
    expected, channels = {}, 3
    for index, out in VGG19_CONVS.items():
        expected[f"features.{index}.weight"] = (out, channels, 3, 3)
        expected[f"features.{index}.bias"] = (out,)
        channels = out
    assert keys == expected
    assert [VGG19_TAPS[f"relu{b}_1"] for b in range(1, 6)] == [1, 6, 11, 20, 29]
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGG19Features("relu6_1")


def test_vgg19_weights_missing_or_misshapen_are_errors():
    torch.manual_seed(0)
    model = VGG19Features("relu2_1")
    good = {k: torch.randn_like(v) for k, v in VGG19Features("relu2_1").state_dict().items()}
    model.load_weights({**good, "classifier.0.weight": torch.zeros(1)})  # extra keys are ignored
    assert torch.equal(model.features[5].weight, good["features.5.weight"])
    with pytest.raises(ValueError, match=r"no 'features\.5\.bias'.*features\.N\.weight"):
        model.load_weights({k: v for k, v in good.items() if k != "features.5.bias"}, source="vgg.safetensors")
    with pytest.raises(ValueError, match=r"'features\.2\.weight' has shape \(64, 3, 3, 3\), expected \(64, 64, 3, 3\)"):
        model.load_weights({**good, "features.2.weight": torch.zeros(64, 3, 3, 3)})


def test_perceptual_loss_asks_for_safetensors(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        PerceptualLoss(tmp_path / "vgg19.safetensors")


def test_perceptual_loss_from_safetensors_file(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    path = tmp_path / "vgg19.safetensors"
    safetensors_torch.save_file(VGG19Features("relu2_1").state_dict(), str(path))
    layers = {"relu1_1": 0.5, "relu2_1": 1.0}
    loss_fn = PerceptualLoss(path, layers)
    assert len(loss_fn.vgg.features) == VGG19_TAPS["relu2_1"] + 1
    real = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    fake = (real.detach() + 0.2 * torch.randn_like(real)).requires_grad_()
    assert loss_fn(real.detach(), real.detach()).item() == 0.0
    loss = loss_fn(fake, real)
    loss.backward()
    assert loss.item() > 0 and fake.grad.abs().sum() > 0
    assert real.grad is None and all(p.grad is None for p in loss_fn.vgg.parameters())
    # [-1, 1] -> ImageNet normalisation: black maps to -mean/std.
    normalised = -torch.ones(1, 3, 1, 1) * loss_fn.scale + loss_fn.shift
    torch.testing.assert_close(
        normalised.flatten(), -torch.tensor([0.485, 0.456, 0.406]) / torch.tensor([0.229, 0.224, 0.225])
    )
    with pytest.raises(ValueError, match=r"vgg19\.safetensors: no 'features\.7\.weight'"):
        PerceptualLoss(path, {"relu3_1": 1.0})
    with pytest.raises(FileNotFoundError):
        PerceptualLoss(tmp_path / "missing.safetensors", layers)
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        PerceptualLoss(path, {"pool5": 1.0})
