"""The partial nonlocal block of Wan et al. (CVPR 2020): attention in latent space in which scratched
("hole") positions borrow features from the rest of the photo and never from other holes.

Memory stays bounded on large photos: attention runs over `chunk` queries at a time (O(chunk x L) scores
instead of O(L^2) for L latent positions), and in `eval()` mode only hole queries are computed at all,
since valid positions keep their own features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from restore.nets.blocks import ResBlock


def downsample_mask(mask: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """The scratch mask (N, 1, H, W), 1 = hole, brought to latent resolution `size` = (h, w), conservatively.

    A latent position is a hole when any pixel of its footprint is (adaptive max pooling), so no latent
    feature computed partly from scratched pixels is ever used as an attention key. Pixels above 0.5 count
    as holes (binary masks pass through, soft masks are thresholded at one half). A mask already at `size`
    is only binarised. Returns (N, 1, h, w) float in {0, 1}, dtype of `mask`.
    """
    return (F.adaptive_max_pool2d(mask, tuple(size)) > 0.5).to(mask.dtype)


def masked_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    hole: torch.Tensor,
    chunk: int,
    queries: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention whose softmax runs over non-hole keys only.

    query, key: (N, C_k, L); value: (N, C_v, L); hole: (N, L) bool, True where position is a hole.
    Scores are q.k / sqrt(C_k); hole keys are masked with -inf, so their weight is exactly zero. A sample
    whose keys are all holes has nothing to borrow from: its output is zero (the caller then falls back on
    local features). `queries` (Q,) int64 optionally picks the query positions to compute (the same for
    every sample), e.g. only the holes at inference. Queries are processed `chunk` at a time, so at most
    N x chunk x L scores exist at once; each chunk goes through `F.scaled_dot_product_attention`, so fused
    kernels apply where PyTorch has them (on CPU its flash kernel, whose backward keeps no score matrix
    either). Returns (N, C_v, Q) with Q = L when `queries` is None.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    if queries is not None:
        query = query.index_select(2, queries)
    no_valid_key = hole.all(dim=1)
    # Samples without valid keys attend everywhere (avoiding an all -inf row) and are zeroed below.
    allowed = (~hole | no_valid_key[:, None])[:, None, None, :]
    q = query.transpose(1, 2).unsqueeze(1)
    k = key.transpose(1, 2).unsqueeze(1)
    v = value.transpose(1, 2).unsqueeze(1)
    out = torch.cat([F.scaled_dot_product_attention(part, k, v, attn_mask=allowed) for part in q.split(chunk, 2)], 2)
    out = out.squeeze(1).transpose(1, 2)
    return torch.where(no_valid_key[:, None, None], torch.zeros_like(out), out)


class PartialNonLocal(nn.Module):
    """Masked nonlocal block: holes are filled by attention over valid positions, valid positions pass.

    theta, phi (C -> `attention_channels`) and g (C -> C) are 1x1 projections to queries, keys and values;
    the attended values go through the 1x1 output projection W and are added residually at hole positions
    only; `hole_res_blocks` residual blocks then refine that map, and the result replaces the features at
    hole positions:

        out = hole * ResBlocks(x + hole * W(attend(x))) + (1 - hole) * x

    W starts at zero (as in the official release), so a fresh block is x outside holes and ResBlocks(x)
    inside. Because the attention term is applied at hole queries only, `eval()` can compute attention
    for hole queries alone (gather, attend, scatter back) and match training mode, which attends with all
    queries in chunks so the batch stays one tensor. x: (N, C, h, w); mask: (N, 1, H, W) scratch mask at
    full or latent resolution, 1 = hole (downsampled with `downsample_mask`). Returns (N, C, h, w).
    """

    def __init__(
        self, channels: int, attention_channels: int, hole_res_blocks: int, chunk: int, norm: bool = True
    ) -> None:
        super().__init__()
        self.chunk = chunk
        self.theta = nn.Conv2d(channels, attention_channels, 1)
        self.phi = nn.Conv2d(channels, attention_channels, 1)
        self.g = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.hole_blocks = nn.Sequential(*(ResBlock(channels, norm=norm) for _ in range(hole_res_blocks)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hole = downsample_mask(mask.to(x.dtype), x.shape[-2:])
        flat_hole = hole.flatten(1) > 0.5
        query, key, value = (proj(x).flatten(2) for proj in (self.theta, self.phi, self.g))
        if self.training:
            attended = masked_attention(query, key, value, flat_hole, self.chunk)
        else:
            attended = self._attend_holes(query, key, value, flat_hole)
        attended = self.out(attended.reshape(x.shape)) * hole
        return hole * self.hole_blocks(x + attended) + (1 - hole) * x

    def _attend_holes(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, hole: torch.Tensor
    ) -> torch.Tensor:
        """Attention for hole queries only, one sample at a time (samples differ in their holes); other
        positions are zero. Shapes as in `masked_attention`; returns (N, C_v, L)."""
        attended = torch.zeros_like(value)
        for n in range(value.shape[0]):
            positions = hole[n].nonzero().squeeze(1)
            if positions.numel():
                part = slice(n, n + 1)
                found = masked_attention(query[part], key[part], value[part], hole[part], self.chunk, positions)
                attended[n].index_copy_(1, positions, found[0])
        return attended
