"""Building blocks shared by every network: conv + norm + activation, a residual block, and anti-aliased
downsampling.

Normalisation is `nn.InstanceNorm2d(affine=False)` throughout, as in pix2pixHD and the official release of
Wan et al.: statistics per image and channel (no running statistics, so train and eval modes compute the
same thing), and no learned scale/shift because the next convolution can apply one. A convolution followed
by normalisation has no bias, since the normalisation would subtract it again (it would be a parameter that
never receives a gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("relu", "lrelu")


def conv_norm_act(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    norm: bool = True,
    act: str | None = "relu",
    padding_mode: str = "reflect",
    dilation: int = 1,
) -> nn.Sequential:
    """Conv2d (padding `dilation * (kernel - 1) // 2`, so odd kernels keep H, W at stride 1 and a 4x4 or
    3x3 kernel at stride 2 maps an even size H to H / 2), then instance norm if `norm`, then `act`:
    "relu", "lrelu" (leaky ReLU, slope 0.2, as in PatchGAN) or None.

    `padding_mode` is any of Conv2d's ("reflect" avoids the dark frame zero padding teaches generators;
    "zeros" is conventional in discriminators). (N, in_ch, H, W) -> (N, out_ch, H', W').
    """
    if act is not None and act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r} (known: {', '.join(ACTIVATIONS)} or None)")
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_ch,
            out_ch,
            kernel,
            stride=stride,
            padding=dilation * (kernel - 1) // 2,
            dilation=dilation,
            bias=not norm,
            padding_mode=padding_mode,
        )
    ]
    if norm:
        layers.append(nn.InstanceNorm2d(out_ch, affine=False))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "lrelu":
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """x + (conv3x3 -> norm -> ReLU -> conv3x3 -> norm)(x), reflect padding, no activation after the add
    (as in pix2pixHD). `dilation` widens the receptive field without downsampling.

    With the second convolution's weights (and bias, when `norm` is off) at zero the block is exactly the
    identity: instance norm maps an all-zero map to zero. (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, norm: bool = True, dilation: int = 1) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv_norm_act(channels, channels, 3, norm=norm, act="relu", dilation=dilation),
            conv_norm_act(channels, channels, 3, norm=norm, act=None, dilation=dilation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019, "Making convolutional networks shift-invariant again"): a
    fixed binomial [1, 2, 1] x [1, 2, 1] / 16 low-pass filter per channel, reflect padding, then keep every
    `stride`-th pixel. Plain strided subsampling aliases, so a one-pixel shift of the input changes the
    output far more; blurring first makes the output change smoothly with shifts.

    (N, channels, H, W) -> (N, channels, ceil(H / stride), ceil(W / stride)); H, W >= 2 (reflect padding).
    A constant image stays the same constant. The filter is a non-persistent buffer: it follows the
    module's device and dtype but is not saved in checkpoints.
    """

    kernel: torch.Tensor

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}"
