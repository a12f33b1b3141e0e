"""The latent mapping T of Wan et al. (CVPR 2020): from VAE A's latent space (degraded photos) to VAE B's
(clean photos), with a partial nonlocal block so scratched regions are filled from the rest of the photo."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from restore.config import MappingConfig
from restore.nets.attention import PartialNonLocal
from restore.nets.blocks import ResBlock, conv_norm_act


def widths(config: MappingConfig) -> list[int]:
    """Channels along the widening convs: `latent`, doubling (capped at `width`) for `widen - 1` steps,
    then `width`; e.g. paper 64 -> 128 -> 512. The narrowing convs walk the list backwards."""
    if config.widen < 1:
        raise ValueError(f"mapping.widen must be at least 1, got {config.widen}")
    steps = [min(config.latent * 2**i, config.width) for i in range(config.widen)]
    return [*steps, config.width]


class Mapping(nn.Module):
    """Latent mapping: `widen` 3x3 conv + instance norm + ReLU layers up to `width` channels,
    `res_blocks` residual blocks, the partial nonlocal block (when `config.nonlocal_block`), `res_blocks`
    more, and narrowing convs back to `latent` channels (the last one plain: latents are unbounded).

    forward(z, mask): z (N, latent, h, w) from VAE A's encoder; mask the scratch mask (N, 1, H, W) at full
    or latent resolution, 1 = hole. With no mask, or a config without the block, the block is skipped —
    the variant for photos without scratches; a mask with no holes gives the same result, since the block
    is the identity outside holes. Returns (N, latent, h, w), to decode with VAE B.
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

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.before(self.widen(z))
        if self.block is not None and mask is not None:
            h = self.block(h, mask)
        return self.narrow(self.after(h))
