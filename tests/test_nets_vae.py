"""Shared blocks, the VAE and the discriminators at `tiny` width: shapes, ranges, noise behaviour,
gradient flow, blur-pool invariances and parameter counts across presets."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from restore.config import DiscriminatorConfig, VAEConfig, model_config  # noqa: E402
from restore.nets.blocks import BlurPool2d, ResBlock, conv_norm_act  # noqa: E402
from restore.nets.discriminators import LatentDiscriminator, MultiScalePatchGAN  # noqa: E402
from restore.nets.vae import VAE, kl  # noqa: E402

TINY = model_config("tiny")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_every_param_has_grad(module: nn.Module) -> None:
    for name, param in module.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def images(n: int, h: int, w: int, channels: int = 3) -> torch.Tensor:
    return torch.rand(n, channels, h, w) * 2 - 1


# --- blocks ---


def test_conv_norm_act_layers_and_bias():
    block = conv_norm_act(3, 5, 3, act="lrelu")
    assert [type(m) for m in block] == [nn.Conv2d, nn.InstanceNorm2d, nn.LeakyReLU]
    assert block[0].bias is None  # instance norm would cancel it
    plain = conv_norm_act(3, 5, 7, norm=False, act=None)
    assert [type(m) for m in plain] == [nn.Conv2d] and plain[0].bias is not None
    assert conv_norm_act(3, 5, 4, stride=2)(torch.zeros(1, 3, 12, 20)).shape == (1, 5, 6, 10)
    assert conv_norm_act(3, 5, 3, dilation=2)(torch.zeros(1, 3, 12, 20)).shape == (1, 5, 12, 20)
    with pytest.raises(ValueError, match="gelu"):
        conv_norm_act(3, 5, 3, act="gelu")


@pytest.mark.parametrize("norm", [True, False])
def test_resblock_is_identity_with_zero_second_conv(norm):
    torch.manual_seed(0)
    block = ResBlock(6, norm=norm, dilation=2)
    x = torch.randn(2, 6, 10, 12)
    assert not torch.allclose(block(x), x)
    with torch.no_grad():
        for param in block.branch[1].parameters():
            param.zero_()
    assert torch.equal(block(x), x)


def test_blurpool_constant_shape_dtype_and_state():
    pool = BlurPool2d(4)
    assert pool(torch.full((2, 4, 7, 9), 0.3)).shape == (2, 4, 4, 5)
    assert torch.allclose(pool(torch.full((2, 4, 7, 9), 0.3)), torch.tensor(0.3))
    assert pool(torch.zeros(1, 4, 16, 16)).shape == (1, 4, 8, 8)
    assert "kernel" not in pool.state_dict()
    assert pool.double()(torch.zeros(1, 4, 6, 6, dtype=torch.float64)).dtype == torch.float64


def test_blurpool_is_more_shift_robust_than_subsampling():
    torch.manual_seed(0)
    x = torch.rand(32, 3, 34, 34)
    a, b = x[..., 1:33, 1:33], x[..., 1:33, 2:34]  # b is a shifted one pixel to the left
    pool = BlurPool2d(3)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the reflected border
    blur_change = (pool(a) - pool(b))[inner].abs().mean()
    plain_change = (a[..., ::2, ::2] - b[..., ::2, ::2])[inner].abs().mean()
    assert blur_change < 0.5 * plain_change


def test_blurpool_matches_reference_average():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # interior output (1, 1) is the [1,2,1]x[1,2,1]/16 weighted mean around input (2, 2)
    weights = torch.tensor([1.0, 2.0, 1.0])
    expected = (torch.outer(weights, weights) * x[0, 0, 1:4, 1:4]).sum() / 16
    assert torch.isclose(BlurPool2d(1)(x)[0, 0, 1, 1], expected)


# --- VAE ---


@pytest.mark.parametrize(("h", "w"), [(32, 32), (48, 64)])
def test_vae_shapes_and_range(h, w):
    torch.manual_seed(0)
    vae = VAE(TINY.vae)
    x = images(2, h, w)
    recon, mean, used = vae(x)
    assert recon.shape == x.shape
    assert mean.shape == used.shape == (2, TINY.vae.latent, h // 4, w // 4)
    assert recon.abs().max() <= 1
    assert vae.encode(x).shape == mean.shape
    assert vae.decode(mean).shape == x.shape


def test_vae_latent_noise_only_in_training():
    torch.manual_seed(0)
    vae = VAE(TINY.vae)
    x = images(2, 32, 32)
    vae.train()
    (r1, m1, u1), (r2, m2, u2) = vae(x), vae(x)
    assert torch.equal(m1, m2)  # the encoder itself is deterministic
    assert not torch.allclose(u1, u2) and not torch.allclose(r1, r2)
    assert (u1 - m1).std().item() == pytest.approx(TINY.vae.latent_noise, rel=0.15)
    vae.eval()
    (r1, m1, u1), (r2, _, _) = vae(x), vae(x)
    assert torch.equal(u1, m1) and torch.equal(r1, r2)
    assert torch.allclose(r1, vae.decode(vae.encode(x)))


def test_vae_gradients_reach_every_parameter():
    torch.manual_seed(0)
    vae = VAE(TINY.vae)
    x = images(2, 32, 32)
    recon, mean, _ = vae(x)
    ((recon - images(2, 32, 32)).abs().mean() + VAE.kl(mean)).backward()
    assert_every_param_has_grad(vae)


def test_kl_is_half_mean_square():
    assert kl(torch.zeros(2, 3, 4, 4)) == 0
    assert kl(torch.full((2, 3, 4, 4), 2.0)).item() == pytest.approx(2.0)
    assert VAE.kl is kl


@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 34), (3, 32, 32)])
def test_vae_rejects_sizes_not_multiple_of_4(shape):
    with pytest.raises(ValueError, match=str(shape[-2:])[1:-1]):
        VAE(TINY.vae).encode(torch.zeros(shape))


# --- discriminators ---


def test_multiscale_patchgan_structure():
    torch.manual_seed(0)
    config = DiscriminatorConfig(base=8, layers=2, scales=2, max_channels=16, latent_base=8)
    disc = MultiScalePatchGAN(config)
    outputs = disc(images(2, 64, 64))
    assert len(outputs) == 2
    assert all(len(features) == config.layers + 2 for features in outputs)
    assert [f.shape for f in outputs[0]] == [(2, 8, 32, 32), (2, 16, 16, 16), (2, 16, 15, 15), (2, 1, 14, 14)]
    assert [f.shape for f in outputs[1]] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 7, 7), (2, 1, 6, 6)]
    sum(features[-1].pow(2).mean() for features in outputs).backward()
    assert_every_param_has_grad(disc)


def test_multiscale_patchgan_conditional_and_spectral_norm():
    torch.manual_seed(0)
    disc = MultiScalePatchGAN(TINY.discriminator, in_channels=6, spectral_norm=True)
    outputs = disc(images(1, 32, 32, channels=6))
    assert len(outputs) == TINY.discriminator.scales and outputs[0][-1].shape == (1, 1, 6, 6)
    assert all(nn.utils.parametrize.is_parametrized(m) for m in disc.modules() if isinstance(m, nn.Conv2d))
    outputs[0][-1].mean().backward()
    assert_every_param_has_grad(disc)


def test_latent_discriminator_shape_and_gradients():
    torch.manual_seed(0)
    disc = LatentDiscriminator(TINY.vae.latent, TINY.discriminator.latent_base)
    logits = disc(torch.randn(2, TINY.vae.latent, 8, 12))
    assert logits.shape == (2, 1, 4, 6)
    logits.pow(2).mean().backward()
    assert_every_param_has_grad(disc)


# --- sizes ---


def test_parameter_counts_grow_with_preset():
    configs = [model_config(name) for name in ("tiny", "small", "paper")]
    vaes = [n_params(VAE(c.vae)) for c in configs]
    discs = [n_params(MultiScalePatchGAN(c.discriminator)) for c in configs]
    latents = [n_params(LatentDiscriminator(c.vae.latent, c.discriminator.latent_base)) for c in configs]
    for counts in (vaes, discs, latents):
        assert counts[0] < counts[1] < counts[2]


@pytest.mark.parametrize("norm", [True, False])
def test_instance_norm_blinds_the_vae_to_global_colour(norm: bool) -> None:
    """Why `small` has no norm: with instance norm, a photo and the same photo brighter and more contrasted
    encode to the same latent, so the decoder cannot give back the photo's own colour."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(base=8, max_channels=16, latent=4, res_blocks=1, norm=norm)).eval()
    x = torch.rand(1, 3, 32, 32) * 0.5 - 0.5
    with torch.no_grad():
        same = torch.allclose(vae.encode(x), vae.encode(1.5 * x + 0.3), atol=1e-4)
    assert same == norm
