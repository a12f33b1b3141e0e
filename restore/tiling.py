"""Run a convolutional network with instance normalisation over a large image in tiles, with the result of
one pass over the whole image.

Tiling a network naively changes its output: every `InstanceNorm2d` normalises by the statistics of what it
sees, so each tile would be normalised differently and seams (or colour shifts between tiles) appear. Here
the statistics are made global. Each norm layer's per-channel mean and variance are accumulated over the
whole image, tile by tile, in one pass per norm layer (the pass stops at that layer, with the layers before
it already frozen to their global statistics); a last pass computes the output with every layer frozen.
Each tile carries a halo at least as wide as the network's receptive field, so the core of each tile, where
statistics are gathered and outputs kept, is exactly what the whole-image pass computes: tiles are joined
edge to edge, with nothing to blend. Memory is that of one tile plus the output; compute grows with the
number of norm layers (about half that many extra passes over the image), the price of exactness.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class _Collected(Exception):
    """Raised by the norm layer whose statistics a pass collects: nothing after it needs computing."""


@dataclass(frozen=True)
class Window:
    """A tile: the input rows/columns it reads (`start`:`stop`, halo included) and the core it keeps
    (`core_start`:`core_stop`), per axis, in input pixels."""

    start: tuple[int, int]
    stop: tuple[int, int]
    core_start: tuple[int, int]
    core_stop: tuple[int, int]


def _axis_windows(size: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
    cores = [(a, min(a + core, size)) for a in range(0, size, core)]
    return [(max(0, a - halo), min(size, b + halo), a, b) for a, b in cores]


def windows(height: int, width: int, core: int, halo: int) -> list[Window]:
    """Tiles whose cores (`core` px squares, multiples of the network's stride) partition the image, each
    read with `halo` px of context on every side that has any."""
    rows, cols = _axis_windows(height, core, halo), _axis_windows(width, core, halo)
    return [Window((r[0], c[0]), (r[1], c[1]), (r[2], c[2]), (r[3], c[3])) for r in rows for c in cols]


class _Statistics:
    """Global per-channel statistics of each norm layer, in call order; the first `len(frozen)` layers
    normalise with them, the next one accumulates its input over tile cores and stops the pass."""

    def __init__(self) -> None:
        self.frozen: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.calls = 0
        self.window: Window | None = None
        self.tile_shape: tuple[int, int] = (1, 1)
        self.edges: tuple[bool, bool] = (False, False)
        self.sums: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None
        self.count = 0

    def core_region(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The tile core in a feature map of `shape`: the core scaled by the map's resolution relative to
        the tile (a power of two); a core on the image's bottom or right edge runs to the map's end, which
        includes any padding the network added there (the whole-image pass counts it too)."""
        assert self.window is not None
        region = []
        for axis in range(2):
            scale = 2.0 ** round(math.log2(shape[axis] / self.tile_shape[axis]))
            start = math.floor((self.window.core_start[axis] - self.window.start[axis]) * scale)
            stop = math.floor((self.window.core_stop[axis] - self.window.start[axis]) * scale)
            region.append(slice(start, shape[axis] if self.edges[axis] else stop))
        return region[0], region[1]

    def normalise(self, module: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        index = self.calls
        self.calls += 1
        if index < len(self.frozen):
            mean, var = self.frozen[index]
            return (x - mean) * torch.rsqrt(var + module.eps)
        rows, cols = self.core_region(x.shape[-2:])
        core = x[..., rows, cols].double()
        sums, squares = core.sum(dim=(0, 2, 3)), core.square().sum(dim=(0, 2, 3))
        self.sums = sums if self.sums is None else self.sums + sums
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += core.shape[0] * core.shape[2] * core.shape[3]
        raise _Collected

    def freeze(self, dtype: torch.dtype) -> None:
        """Close the layer being collected: its global mean and (biased) variance become frozen."""
        assert self.sums is not None and self.squares is not None
        mean = self.sums / self.count
        var = (self.squares / self.count - mean.square()).clamp_min(0)
        self.frozen.append((mean.to(dtype).view(1, -1, 1, 1), var.to(dtype).view(1, -1, 1, 1)))
        self.sums = self.squares = None
        self.count = 0


@contextmanager
def _global_norms(module: nn.Module, statistics: _Statistics) -> Iterator[None]:
    norms = [m for m in module.modules() if isinstance(m, nn.InstanceNorm2d)]
    for norm in norms:
        if norm.affine or norm.track_running_stats:
            raise ValueError("tiling supports InstanceNorm2d without affine parameters or running statistics")
        norm.forward = types.MethodType(lambda self, x: statistics.normalise(self, x), norm)
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward


def run_tiled(
    net: Callable[[torch.Tensor], torch.Tensor],
    module: nn.Module,
    x: torch.Tensor,
    *,
    core: int,
    halo: int,
) -> torch.Tensor:
    """`net(x)` for x (1, C, H, W), computed in tiles of `core` px plus `halo` px of context.

    `module` holds every `InstanceNorm2d` that `net` calls (once each per call); `core` and `halo` must be
    multiples of the network's total stride so the tiles' sampling grids line up with the whole image's,
    and `halo` must cover the receptive field. The output may be at another resolution than x (an encoder,
    a decoder); its tiles are placed at the same relative positions. An image that fits in one tile is run
    in one pass.
    """
    height, width = x.shape[-2:]
    tiles = windows(height, width, core, halo)
    if len(tiles) == 1:
        return net(x)
    statistics = _Statistics()
    out: torch.Tensor | None = None
    with _global_norms(module, statistics):
        while out is None:
            collecting = False
            for window in tiles:
                statistics.calls = 0
                statistics.window = window
                statistics.tile_shape = (window.stop[0] - window.start[0], window.stop[1] - window.start[1])
                statistics.edges = (window.core_stop[0] == height, window.core_stop[1] == width)
                tile = x[..., window.start[0] : window.stop[0], window.start[1] : window.stop[1]]
                try:
                    result = net(tile)
                except _Collected:
                    collecting = True
                else:
                    out = _place(out, result, window, statistics, (height, width))
            if collecting:
                statistics.freeze(x.dtype)
                out = None
    return out


def _place(
    out: torch.Tensor | None, result: torch.Tensor, window: Window, statistics: _Statistics, size: tuple[int, int]
) -> torch.Tensor:
    """Copy the core of one tile's output into the whole output (allocated from the first tile)."""
    scale = result.shape[-2] / statistics.tile_shape[0]
    if out is None:
        out = result.new_empty(*result.shape[:2], round(size[0] * scale), round(size[1] * scale))
    rows, cols = statistics.core_region(result.shape[-2:])
    top, left = round(window.start[0] * scale), round(window.start[1] * scale)
    out[..., top + rows.start : top + rows.stop, left + cols.start : left + cols.stop] = result[..., rows, cols]
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 0) -> torch.Tensor:
    """Reflect-pad x (N, C, H, W) at the bottom and right to multiples of `multiple` (and at least
    `minimum` px): networks with strided layers need it, and reflection adds no false edges."""
    height, width = x.shape[-2:]
    pad_h = max(-height % multiple, minimum - height)
    pad_w = max(-width % multiple, minimum - width)
    pad_h += -(height + pad_h) % multiple
    pad_w += -(width + pad_w) % multiple
    if min(x.shape[-2:]) < 2 and (pad_h or pad_w):  # nothing to reflect in a 1 px line
        x = F.pad(x, (0, 1 if pad_w else 0, 0, 1 if pad_h else 0), mode="replicate")
        pad_h, pad_w = max(0, pad_h - 1), max(0, pad_w - 1)
    while pad_h or pad_w:  # reflection can add at most size - 1 px at a time
        step_h, step_w = min(pad_h, x.shape[-2] - 1), min(pad_w, x.shape[-1] - 1)
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


def receptive_radius(
    net: Callable[[torch.Tensor], torch.Tensor], module: nn.Module, channels: int, stride: int, size: int = 128
) -> int:
    """How far (in input px, rounded up to a multiple of `stride`, plus one stride of margin) an output
    pixel of `net` sees, instance norms aside: the halo `run_tiled` needs. Measured, not derived from the
    architecture: with every norm frozen to the identity, the input gradient of one central output pixel
    is nonzero exactly within its receptive field (the input is random, so no path is switched off
    everywhere). The probe grows until the field fits inside it."""
    statistics = _Statistics()
    identity = (torch.zeros(()), torch.ones(()))
    statistics.frozen = [identity] * sum(isinstance(m, nn.InstanceNorm2d) for m in module.modules())
    generator = torch.Generator().manual_seed(0)
    with _global_norms(module, statistics), torch.enable_grad():
        while True:
            x = (torch.rand(1, channels, size, size, generator=generator) * 2 - 1).requires_grad_(True)
            statistics.calls = 0
            y = net(x)
            cy, cx = y.shape[-2] // 2, y.shape[-1] // 2
            (grad,) = torch.autograd.grad(y[..., cy, cx].sum(), x)  # leaves the parameters' .grad alone
            rows, cols = (grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
            scale = size / y.shape[-2]
            centre_y, centre_x = (cy + 0.5) * scale, (cx + 0.5) * scale
            radius = max(
                centre_y - rows.min().item(), rows.max().item() + 1 - centre_y,
                centre_x - cols.min().item(), cols.max().item() + 1 - centre_x,
            )  # fmt: skip
            if radius < size / 2 - stride:
                return (math.ceil(radius / stride) + 1) * stride
            size *= 2
