"""Scratch detector: a U-Net that marks scratched pixels of a grayscale photo, so the mapping's partial
nonlocal block knows which latent positions to fill. Scratches are thin, bright or dark and mostly
colourless, hence grayscale input; blur-pool downsampling keeps the response stable under small shifts of
such one-pixel-wide structures."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from restore.config import DetectorConfig
from restore.nets.blocks import BlurPool2d, conv_norm_act

# ITU-R BT.601 luma weights (those of PIL's "L" mode); they sum to 1, so [-1, 1] maps into [-1, 1].
LUMA = (0.299, 0.587, 0.114)
# Initial probability of "scratch" at every pixel (RetinaNet's prior): scratches cover a few percent of
# a photo, and starting the logits there keeps the first focal-loss steps from being swamped by
# easy negatives.
PRIOR = 0.01


def to_detector_input(rgb: torch.Tensor) -> torch.Tensor:
    """RGB batch (N, 3, H, W) in [-1, 1] -> the detector's input (N, 1, H, W): luma, still in [-1, 1]."""
    weights = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv + instance norm + leaky ReLU layers: (N, in_ch, H, W) -> (N, out_ch, H, W)."""
    return nn.Sequential(conv_norm_act(in_ch, out_ch, 3, act="lrelu"), conv_norm_act(out_ch, out_ch, 3, act="lrelu"))


class ScratchDetector(nn.Module):
    """U-Net scratch detector.

    Input (N, `in_channels`, H, W) grayscale in [-1, 1] (see `to_detector_input`); output logits
    (N, 1, H, W), one per pixel (sigmoid for the scratch probability). A 7x7 stem of `base` channels,
    then `depth` levels, each a stride-1 3x3 conv followed by `BlurPool2d` (anti-aliased, instead of a
    strided conv) and two 3x3 convs, channels doubling up to `max_channels`; the decoder upsamples
    bilinearly x2, applies a 3x3 conv, concatenates the skip at that level and applies two 3x3 convs.

    Sizes not divisible by 2^depth are reflect-padded up to the next multiple inside `forward` and the
    logits cropped back, so any H, W >= 2^(depth + 1) works (the coarsest level must be at least 2x2 for
    the reflect padding of its convolutions).
    """

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.depth = config.depth
        channels = [min(config.base * 2**level, config.max_channels) for level in range(config.depth + 1)]
        self.stem = nn.Sequential(
            conv_norm_act(config.in_channels, config.base, 7, act="lrelu"), _double_conv(config.base, channels[0])
        )
        self.down = nn.ModuleList(
            nn.Sequential(
                conv_norm_act(channels[i], channels[i], 3, act="lrelu"),
                BlurPool2d(channels[i]),
                _double_conv(channels[i], channels[i + 1]),
            )
            for i in range(config.depth)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                conv_norm_act(channels[i + 1], channels[i], 3, act="lrelu"),
            )
            for i in range(config.depth)
        )
        self.merge = nn.ModuleList(_double_conv(2 * channels[i], channels[i]) for i in range(config.depth))
        self.head = nn.Conv2d(channels[0], 1, 1)
        nn.init.constant_(self.head.bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        if min(height, width) < 2 * multiple:
            raise ValueError(f"detector input must be at least {2 * multiple} pixels a side, got {height}x{width}")
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple), mode="reflect")
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for level in reversed(range(self.depth)):
            h = self.merge[level](torch.cat([self.up[level](h), skips[level]], dim=1))
        return self.head(h)[..., :height, :width]
