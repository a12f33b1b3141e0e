"""Discriminators for adversarial training (least-squares GAN, as pix2pixHD and Wan et al.): a multi-scale
PatchGAN on images that also hands back its intermediate features for the feature-matching loss, and a
small patch discriminator on VAE latents that pulls the latents of synthetic degraded photos and real old
photos together (VAE A's domain alignment).

Zero padding (conventional for discriminators); no activation on the logits (LSGAN regresses them to 1 for
real and 0 for fake). `spectral_norm` wraps every convolution in torch's spectral-norm parametrisation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from restore.config import DiscriminatorConfig
from restore.nets.blocks import conv_norm_act


def _with_spectral_norm(module: nn.Module) -> nn.Module:
    """`module` with every Conv2d's weight reparametrised by its spectral norm (in place)."""
    for conv in [m for m in module.modules() if isinstance(m, nn.Conv2d)]:
        _spectral_norm(conv)
    return module


class PatchGAN(nn.Module):
    """One PatchGAN: `layers` 4x4 stride-2 convs from `base` channels (doubling, capped at `max_channels`;
    leaky ReLU 0.2; instance norm on all but the first), a 4x4 stride-1 conv, and a 4x4 conv to 1 channel.

    (N, in_channels, H, W) -> list of `layers + 2` feature maps, the last the patch logits
    (N, 1, H / 2**layers - 2, W / 2**layers - 2) for H, W multiples of 2**layers.
    """

    def __init__(self, in_channels: int, base: int, layers: int, max_channels: int) -> None:
        super().__init__()
        widths = [min(base * 2**i, max_channels) for i in range(layers + 1)]
        blocks = [conv_norm_act(in_channels, widths[0], 4, stride=2, norm=False, act="lrelu", padding_mode="zeros")]
        blocks += [
            conv_norm_act(widths[i - 1], widths[i], 4, stride=2, act="lrelu", padding_mode="zeros")
            for i in range(1, layers)
        ]
        blocks.append(conv_norm_act(widths[layers - 1], widths[layers], 4, act="lrelu", padding_mode="zeros"))
        blocks.append(nn.Conv2d(widths[layers], 1, 4, padding=1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiScalePatchGAN(nn.Module):
    """`scales` PatchGANs; the k-th (k = 0, 1, ...) sees the input average-pooled k times (3x3, stride 2,
    padding not counted), so coarse discriminators judge global structure and fine ones texture.

    forward: (N, in_channels, H, W) -> one list per scale (finest first) of `layers + 2` feature maps,
    the last of each the patch logits (N, 1, h, w). `in_channels` is 6 for a discriminator conditioned on
    the input image (concatenated with the output).
    """

    def __init__(self, config: DiscriminatorConfig, in_channels: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = config
        self.discriminators = nn.ModuleList(
            PatchGAN(in_channels, config.base, config.layers, config.max_channels) for _ in range(config.scales)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        if spectral_norm:
            _with_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for k, discriminator in enumerate(self.discriminators):
            if k:
                x = self.downsample(x)
            outputs.append(discriminator(x))
        return outputs


class LatentDiscriminator(nn.Module):
    """Patch discriminator on VAE latents: 3x3 conv to `base` (leaky ReLU), a 4x4 stride-2 conv to
    2 * `base`, a 3x3 conv (instance norm, leaky ReLU on both), and a 3x3 conv to 1 channel.

    (N, latent_channels, h, w) -> patch logits (N, 1, h / 2, w / 2) for even h, w; each logit sees a
    14 x 14 window of latent positions (a 56-pixel span of the image), enough to judge the damage's look.
    """

    def __init__(self, latent_channels: int, base: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(
            conv_norm_act(latent_channels, base, 3, norm=False, act="lrelu", padding_mode="zeros"),
            conv_norm_act(base, 2 * base, 4, stride=2, act="lrelu", padding_mode="zeros"),
            conv_norm_act(2 * base, 2 * base, 3, act="lrelu", padding_mode="zeros"),
            nn.Conv2d(2 * base, 1, 3, padding=1),
        )
        if spectral_norm:
            _with_spectral_norm(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
