"""The VAE of Wan et al. (CVPR 2020): one class, trained twice — VAE A on degraded (and real old) photos,
VAE B on clean ones — so that the mapping network can work between their latent spaces.

Reduced VAE: the encoder predicts only the latent mean; training adds Gaussian noise of std
`latent_noise` to it before decoding, and with the variance fixed the KL term against N(0, I) reduces to
0.5 * mean^2 (up to a constant). Images are in [-1, 1]; the latent has `latent` channels at H/4 x W/4.
"""

from __future__ import annotations

import torch
from torch import nn

from restore.config import VAEConfig
from restore.nets.blocks import ResBlock, conv_norm_act

DOWNSCALE = 4
"""Latent resolution is H / DOWNSCALE x W / DOWNSCALE; inputs must be multiples of it (callers pad)."""


def kl(mean: torch.Tensor) -> torch.Tensor:
    """The reduced VAE's KL term: 0.5 * mean^2 averaged over every element of the latent mean
    (N, latent, h, w) -> scalar. The full KL(N(mean, s^2) || N(0, 1)) minus the terms that do not depend
    on the mean (the encoder predicts no variance)."""
    return 0.5 * mean.pow(2).mean()


def _widths(config: VAEConfig) -> list[int]:
    """Channels at full, half and quarter resolution: `base`, doubling per downsampling, capped."""
    return [min(config.base * 2**level, config.max_channels) for level in range(3)]


def _encoder(config: VAEConfig) -> nn.Sequential:
    full, half, quarter = _widths(config)
    return nn.Sequential(
        conv_norm_act(config.in_channels, full, 7, norm=config.norm),
        # 4x4 stride-2 kernels (as the official release) cover every input pixel equally often.
        conv_norm_act(full, half, 4, stride=2, norm=config.norm),
        conv_norm_act(half, quarter, 4, stride=2, norm=config.norm),
        *(ResBlock(quarter, norm=config.norm) for _ in range(config.res_blocks)),
        nn.Conv2d(quarter, config.latent, 1),
    )


def _upsample(in_ch: int, out_ch: int, norm: bool) -> nn.Sequential:
    """Nearest-neighbour x2 then a 3x3 conv: unlike a transposed convolution, every output pixel sees the
    same number of kernel taps, so no checkerboard artefacts (Odena et al. 2016)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *conv_norm_act(in_ch, out_ch, 3, norm=norm))


def _decoder(config: VAEConfig) -> nn.Sequential:
    full, half, quarter = _widths(config)
    return nn.Sequential(
        conv_norm_act(config.latent, quarter, 3, norm=config.norm),
        *(ResBlock(quarter, norm=config.norm) for _ in range(config.res_blocks)),
        _upsample(quarter, half, config.norm),
        _upsample(half, full, config.norm),
        nn.Conv2d(full, config.in_channels, 7, padding=3, padding_mode="reflect"),
        nn.Tanh(),
    )


class VAE(nn.Module):
    """Encoder: 7x7 stem to `base` channels, two 4x4 stride-2 convs (doubling, capped at `max_channels`),
    `res_blocks` residual blocks, a 1x1 conv to `latent` channels (the mean; no norm, no activation).
    Decoder mirrors it: 3x3 conv from the latent, residual blocks, two nearest x2 + 3x3 upsamplings, a 7x7
    conv to `in_channels` and tanh. Instance norm and reflect padding throughout.

    Images (N, in_channels, H, W) in [-1, 1] with H and W multiples of 4 (callers pad, e.g. by reflection,
    and crop the result); latents (N, latent, H/4, W/4).
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _encoder(config)
        self.decoder = _decoder(config)

    kl = staticmethod(kl)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent mean (N, latent, H/4, W/4) of images (N, in_channels, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[-2] % DOWNSCALE or x.shape[-1] % DOWNSCALE:
            raise ValueError(
                f"VAE input must be (N, C, H, W) with H and W multiples of {DOWNSCALE}, got shape "
                f"{tuple(x.shape)}; pad the image first"
            )
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, in_channels, 4h, 4w) in [-1, 1] from latents (N, latent, h, w)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, latent mean, latent decoded). In training mode the decoded latent is the mean
        plus `latent_noise` * N(0, 1) noise (drawn from torch's RNG on the input's device, in NCHW order
        whatever the layout, so a channels-last run draws the same noise); in eval mode it is the mean itself,
        so evaluation is deterministic."""
        mean = self.encode(x)
        if not self.training:
            return self.decode(mean), mean, mean
        used = mean + self.config.latent_noise * torch.randn(mean.shape, dtype=mean.dtype, device=mean.device)
        return self.decode(used), mean, used
