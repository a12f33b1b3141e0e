"""The latent mapping T of Wan et al. (CVPR 2020): from VAE A's latent space (degraded photos) to VAE B's
(clean photos), with a partial nonlocal block so scratched regions are filled from the rest of the photo."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from restore.config import MappingConfig
from restore.nets.attention import PartialNonLocal, downsample_mask
from restore.nets.blocks import ResBlock, conv_norm_act


def widths(config: MappingConfig) -> list[int]:
    """Channels along the widening convs: `latent`, doubling (capped at `width`) for `widen - 1` steps,
    then `width`; e.g. paper 64 -> 128 -> 512. The narrowing convs walk the list backwards."""
    if config.widen < 1:
        raise ValueError(f"mapping.widen must be at least 1, got {config.widen}")
    steps = [min(config.latent * 2**i, config.width) for i in range(config.widen)]
    return [*steps, config.width]


#: Quantiles of each channel that the FiLM context reads (its black and white points), and the most positions
#: it sorts for them: larger latents are sampled at an even stride, which keeps big photos cheap.
CONTEXT_QUANTILES = (0.02, 0.98)
QUANTILE_POSITIONS = 65536


def _quantiles(x: torch.Tensor, valid: torch.Tensor) -> list[torch.Tensor]:
    """`CONTEXT_QUANTILES` of each channel of x (N, C, h, w) over its `valid` positions (N, 1, h, w, bool, at
    least one per sample): one (N, C, 1, 1) tensor per quantile."""
    flat, keep = x.flatten(2), valid.flatten(2)
    step = -(-flat.shape[-1] // QUANTILE_POSITIONS)
    flat, keep = flat[..., ::step], keep[..., ::step]
    levels = torch.tensor(CONTEXT_QUANTILES, dtype=x.dtype, device=x.device)
    values = torch.nanquantile(flat.masked_fill(~keep, float("nan")), levels, dim=-1)  # (Q, N, C)
    return [level[..., None, None] for level in values]


class GlobalContext(nn.Module):
    """Every position learns the photo's global statistics over valid positions: x + MLP(mean, std), or with
    `film`, x * (1 + a) + b with (a, b) = MLP(mean, std, 2nd and 98th percentiles).

    Fading and colour casts are one transform of the whole print; to undo them a position needs the
    photo's statistics, which a stack of 3x3 convolutions cannot see. Hole positions (scratch, tear) are
    left out of the statistics when a mask is given, unless everything is a hole. The mapping runs on the
    whole latent at inference (never tiled), so every position sees the same statistics.

    `film` (feature-wise linear modulation, Perez et al. 2018): undoing a fade is a gain and an offset, which
    an added bias cannot apply to features of every level; the percentiles are the black and white points
    that tell a faded print (lifted blacks, dull highlights) from a photo that is merely low in contrast, and
    which mean and spread hide. Its last layer starts at zero, so the block starts as the identity.
    (N, C, h, w), optional hole map (N, 1, h, w) in {0, 1} -> (N, C, h, w).
    """

    def __init__(self, channels: int, film: bool = False) -> None:
        super().__init__()
        self.film = film
        statistics, outputs = (4, 2) if film else (2, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(statistics * channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, outputs * channels, 1),
        )
        if film:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        weight = torch.ones_like(x[:, :1]) if hole is None else 1 - hole
        weight = torch.where(weight.sum((2, 3), keepdim=True) > 0, weight, torch.ones_like(weight))
        valid = weight > 0
        weight = weight / weight.sum((2, 3), keepdim=True)
        mean = (x * weight).sum((2, 3), keepdim=True)
        std = (((x - mean) ** 2 * weight).sum((2, 3), keepdim=True) + 1e-6).sqrt()
        if not self.film:
            return x + self.mlp(torch.cat([mean, std], 1))
        scale, shift = self.mlp(torch.cat([mean, std, *_quantiles(x, valid)], 1)).chunk(2, 1)
        return x * (1 + scale) + shift


class Mapping(nn.Module):
    """Latent mapping: `widen` 3x3 conv + instance norm + ReLU layers up to `width` channels,
    `res_blocks` residual blocks, the partial nonlocal block (when `config.nonlocal_block`), `res_blocks`
    more, and narrowing convs back to `latent` channels (the last one plain: latents are unbounded).

    forward(z, mask): z (N, latent, h, w) from VAE A's encoder; mask the scratch mask (N, 1, H, W) at full
    or latent resolution, 1 = hole. With no mask, or a config without the block, the block is skipped —
    the variant for photos without scratches; a mask with no holes gives the same result, since the block
    is the identity outside holes. Returns (N, latent, h, w), to decode with VAE B.

    With `config.global_context` a `GlobalContext` (with `config.context_film`, its modulating form) follows
    the widening convs; with `config.skip` a linear
    1x1 path from z is added outside holes and the last conv starts at zero (see `MappingConfig` for why).
    """

    def __init__(self, config: MappingConfig) -> None:
        super().__init__()
        channels = widths(config)
        norm = config.norm
        self.widen = nn.Sequential(*(conv_norm_act(a, b, 3, norm=norm) for a, b in pairwise(channels)))
        self.before = nn.Sequential(*(ResBlock(config.width, norm=norm) for _ in range(config.res_blocks)))
        self.block = (
            PartialNonLocal(
                config.width, config.attention_channels, config.hole_res_blocks, config.attention_chunk, norm=norm
            )
            if config.nonlocal_block
            else None
        )
        self.after = nn.Sequential(*(ResBlock(config.width, norm=norm) for _ in range(config.res_blocks)))
        pairs = list(pairwise(channels[::-1]))
        self.narrow = nn.Sequential(
            *(conv_norm_act(a, b, 3, norm=norm) for a, b in pairs[:-1]),
            conv_norm_act(*pairs[-1], 3, norm=False, act=None),
        )
        self.context = GlobalContext(config.width, config.context_film) if config.global_context else None
        self.skip = nn.Conv2d(config.latent, config.latent, 1) if config.skip else None
        if self.skip is not None:
            last = self.narrow[-1][0]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        hole = None if mask is None else downsample_mask(mask, z.shape[-2:])
        h = self.widen(z)
        if self.context is not None:
            h = self.context(h, hole)
        h = self.before(h)
        if self.block is not None and hole is not None:
            h = self.block(h, hole)  # already at latent resolution: the block only binarises it
        out = self.narrow(self.after(h))
        if self.skip is None:
            return out
        return out + self.skip(z) * (1 if hole is None else 1 - hole)

    @torch.no_grad()
    def fit_skip(self, source: torch.Tensor, target: torch.Tensor) -> float:
        """Set the skip path to the least-squares affine map from `source` latents (N, latent, h, w: VAE A's
        of clean photos) to `target` ones (VAE B's of the same photos), fitted over every position; returns
        the fit's mean absolute error relative to the targets' mean magnitude."""
        if self.skip is None:
            raise ValueError("this mapping has no skip path (config.skip is off)")
        x = source.permute(0, 2, 3, 1).reshape(-1, source.shape[1]).double()
        y = target.permute(0, 2, 3, 1).reshape(-1, target.shape[1]).double()
        x = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        solution = torch.linalg.lstsq(x, y).solution
        self.skip.weight.copy_(solution[:-1].T[:, :, None, None])
        self.skip.bias.copy_(solution[-1])
        return ((x @ solution - y).abs().mean() / y.abs().mean().clamp_min(1e-12)).item()
