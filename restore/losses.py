"""The losses of the restoration model (Wan et al., CVPR 2020); none needs downloaded weights except the
optional perceptual loss, which runs only when the user supplies a VGG19 weights file.

Conventions: images are (N, C, H, W) in [-1, 1]; a multi-scale discriminator returns, per scale, a list of
features whose last element is the patch logits (pix2pixHD). Every function returns a scalar tensor unless
it says otherwise; loss weights (lambda_feat, lambda_kl, ...) are the caller's. Pixel L1 is plain
`torch.nn.functional.l1_loss`; the reduced VAE's KL term is `restore.nets.vae.kl`, beside the VAE it belongs to.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DiscriminatorOutputs = Sequence[Sequence[Tensor]]
"""Per scale, the discriminator's intermediate features followed by its patch logits (last)."""


def lsgan_d(real_outputs: DiscriminatorOutputs, fake_outputs: DiscriminatorOutputs) -> Tensor:
    """Least-squares discriminator loss: mean over scales of 0.5 * [mean((D(real) - 1)^2) + mean(D(fake)^2)].

    Zero when D says 1 on real and 0 on fake. Run the discriminator on the *detached* fake image so this loss
    does not reach the generator. pix2pixHD sums over scales instead of averaging (num_scales times this).
    """
    _check_scales(real_outputs, fake_outputs)
    per_scale = [
        0.5 * ((real[-1] - 1).square().mean() + fake[-1].square().mean())
        for real, fake in zip(real_outputs, fake_outputs, strict=True)
    ]
    return torch.stack(per_scale).mean()


def lsgan_g(fake_outputs: DiscriminatorOutputs) -> Tensor:
    """Least-squares generator loss: mean over scales of mean((D(fake) - 1)^2); zero when D says 1 on fake.

    No 0.5 factor (pix2pixHD's convention; it sums over scales where this averages)."""
    if not fake_outputs:
        raise ValueError("discriminator returned no scales")
    return torch.stack([(fake[-1] - 1).square().mean() for fake in fake_outputs]).mean()


def feature_matching(real_outputs: DiscriminatorOutputs, fake_outputs: DiscriminatorOutputs) -> Tensor:
    """L1 between the discriminator's intermediate features on real (detached) and fake images.

    Weighted 1/num_scales * 1/num_layers (a mean over scales of the mean over layers), the logits excluded.
    pix2pixHD weights each layer 4/(n_layers_D + 1) instead, i.e. a sum over its four layers at its default
    depth: 4x this value. Gradients reach the fake branch only.
    """
    _check_scales(real_outputs, fake_outputs)
    per_scale = []
    for scale, (real, fake) in enumerate(zip(real_outputs, fake_outputs, strict=True)):
        if len(real) != len(fake) or len(real) < 2:
            raise ValueError(
                f"scale {scale}: real and fake need the same number (>= 2) of outputs, got {len(real)} and {len(fake)}"
            )
        layers = [F.l1_loss(f, r.detach()) for r, f in zip(real[:-1], fake[:-1], strict=True)]
        per_scale.append(torch.stack(layers).mean())
    return torch.stack(per_scale).mean()


def _check_scales(real_outputs: DiscriminatorOutputs, fake_outputs: DiscriminatorOutputs) -> None:
    if not real_outputs or len(real_outputs) != len(fake_outputs):
        raise ValueError(
            f"real and fake need the same number (>= 1) of scales, got {len(real_outputs)} and {len(fake_outputs)}"
        )


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 2.0) -> Tensor:
    """Mean structural similarity of two (N, C, H, W) batches, per channel with a Gaussian window.

    Matches scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`: K1 = 0.01, K2 = 0.03, statistics over `window` x `window` Gaussian
    windows lying wholly inside the image, averaged over pixels, channels and the batch. `data_range` is
    max - min of the value range (2 for [-1, 1]). 1 for identical images.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if window % 2 == 0 or min(x.shape[-2:]) < window:
        raise ValueError(f"ssim needs an odd window no larger than the image, got {window} for {tuple(x.shape[-2:])}")
    offsets = torch.arange(window, dtype=x.dtype, device=x.device) - window // 2
    taps = torch.exp(-0.5 * (offsets / sigma).square())
    taps = taps / taps.sum()
    # One grouped separable blur gives the five local moments of every channel at once.
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = moments.shape[1]
    moments = F.conv2d(moments, taps.view(1, 1, 1, window).expand(groups, 1, 1, window), groups=groups)
    moments = F.conv2d(moments, taps.view(1, 1, window, 1).expand(groups, 1, window, 1), groups=groups)
    mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
    var_x, var_y, cov = xx - mu_x.square(), yy - mu_y.square(), xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return index.mean()


def ssim_loss(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 2.0) -> Tensor:
    """1 - ssim(x, y): zero for identical images, in [0, 2]."""
    return 1 - ssim(x, y, window, sigma, data_range)


def latent_l1(mapped: Tensor, target_latent: Tensor) -> Tensor:
    """L1 between mapping T's output and VAE B's encoding of the clean image, both (N, C, H/4, W/4); the target
    is detached so the loss trains T only."""
    return F.l1_loss(mapped, target_latent.detach())


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft Dice loss, 1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth), of sigmoid(`logits`) against
    `target` in [0, 1], pooled over the whole batch (Milletari et al., 2016).

    Pixel losses such as focal loss are scored one pixel at a time, so with thin scratches covering ~1 % of a
    photo a detector can lower them while finding few scratches; Dice is a differentiable F1 of the mask and
    rewards overlap directly. Pooling over the batch, not per image, keeps crops without any scratch from
    adding a term that is 1 whatever the detector does; `smooth` keeps an empty batch at 0.
    """
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum()
    return 1 - (2 * overlap + smooth) / (probability.sum() + target.sum() + smooth)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | None = None,
    pos_weight: float | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary focal loss on logits (Lin et al., 2017): BCE scaled by (1 - p_t)^gamma, so confident correct
    pixels (easy background) contribute little and rare scratches are not swamped.

    `target` in [0, 1], the shape of `logits`. `alpha` weights positives by alpha and negatives by 1 - alpha
    (Lin et al. use 0.25); `pos_weight` multiplies the positive log-likelihood term as in
    `binary_cross_entropy_with_logits`. With gamma = 0 and no alpha this is exactly that BCE. `reduction`:
    "mean", "sum" or "none" (per-element losses).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight, reduction="none")
    if gamma != 0:
        # 1 - p_t from both sigmoids: exact in the tails, where 1 - sigmoid(x) would round to 0 or 1.
        miss = torch.sigmoid(logits) * (1 - target) + torch.sigmoid(-logits) * target
        loss = loss * miss.pow(gamma)
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


_VGG19_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
"""(channels, convs) of VGG19's five blocks, each block but the first preceded by a 2x2 max-pool."""


def _vgg19_taps() -> dict[str, int]:
    """reluB_K (block B, conv K) -> its index in torchvision's `vgg19().features`."""
    taps, index = {}, 0
    for block, (_, convs) in enumerate(_VGG19_BLOCKS, start=1):
        index += block > 1  # the max-pool
        for conv in range(1, convs + 1):
            taps[f"relu{block}_{conv}"] = index + 1
            index += 2
    return taps


VGG19_TAPS = _vgg19_taps()


def _vgg19_layers() -> Iterator[nn.Module]:
    """torchvision's `vgg19().features` in order, built lazily so a truncated trunk builds only what it keeps."""
    channels = 3
    for block, (width, convs) in enumerate(_VGG19_BLOCKS, start=1):
        if block > 1:
            yield nn.MaxPool2d(2, 2)
        for _ in range(convs):
            yield nn.Conv2d(channels, width, 3, padding=1)
            yield nn.ReLU()
            channels = width


DEFAULT_PERCEPTUAL_LAYERS: Mapping[str, float] = {
    "relu1_1": 1 / 32,
    "relu2_1": 1 / 16,
    "relu3_1": 1 / 8,
    "relu4_1": 1 / 4,
    "relu5_1": 1.0,
}
"""pix2pixHD's (and the official release's) VGG loss layers and weights."""

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG19's convolutional trunk up to `last` (a ReLU named reluB_K: block B, conv K), laid out like
    torchvision's `vgg19().features` so its state-dict keys (`features.N.weight`, `features.N.bias`) match the
    standard ImageNet weights. Input: ImageNet-normalised (N, 3, H, W)."""

    def __init__(self, last: str = "relu5_1") -> None:
        super().__init__()
        if last not in VGG19_TAPS:
            raise ValueError(f"unknown VGG19 layer {last!r} (known: {', '.join(VGG19_TAPS)})")
        self.features = nn.Sequential(*islice(_vgg19_layers(), VGG19_TAPS[last] + 1))

    def forward(self, x: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """The activations of the named ReLUs."""
        wanted = {VGG19_TAPS[name]: name for name in names}
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out

    def load_weights(self, state: Mapping[str, Tensor], source: str = "state dict") -> None:
        """Load every parameter from `state` (extra keys, e.g. deeper layers or the classifier, are ignored);
        a missing key or a wrong shape is an error naming it, never a silent partial load."""
        for key, param in self.state_dict().items():
            if key not in state:
                raise ValueError(f"{source}: no {key!r}; expected torchvision's VGG19 key naming (features.N.weight)")
            if tuple(state[key].shape) != tuple(param.shape):
                raise ValueError(
                    f"{source}: {key!r} has shape {tuple(state[key].shape)}, expected {tuple(param.shape)} (VGG19)"
                )
        self.load_state_dict({key: state[key] for key in self.state_dict()})


class PerceptualLoss(nn.Module):
    """Weighted L1 between frozen VGG19 activations of the fake and the (detached) real image.

    Off unless the user supplies `weights_path`: a safetensors file of torchvision's ImageNet VGG19 weights
    (keys `features.N.weight`/`.bias`; needs `pip install safetensors`). `layers` maps ReLU names to weights.
    Inputs (N, 3, H, W) in [-1, 1] are converted to ImageNet normalisation internally.
    """

    def __init__(self, weights_path: str | os.PathLike[str], layers: Mapping[str, float] = DEFAULT_PERCEPTUAL_LAYERS):
        super().__init__()
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ImportError(
                "the perceptual loss reads VGG19 weights from a safetensors file: pip install safetensors"
            ) from err
        if not layers:
            raise ValueError("the perceptual loss needs at least one layer")
        unknown = [name for name in layers if name not in VGG19_TAPS]
        if unknown:
            raise ValueError(f"unknown VGG19 layer {unknown[0]!r} (known: {', '.join(VGG19_TAPS)})")
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"VGG19 weights file not found: {os.fspath(weights_path)}")
        self.layers = dict(layers)
        self.vgg = VGG19Features(max(layers, key=VGG19_TAPS.__getitem__))
        self.vgg.load_weights(load_file(os.fspath(weights_path)), source=os.fspath(weights_path))
        self.vgg.requires_grad_(False)
        # [-1, 1] -> ImageNet normalisation in one affine map: ((x + 1) / 2 - mean) / std.
        mean, std = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        self.register_buffer("scale", (0.5 / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((0.5 - mean) / std).view(1, 3, 1, 1), persistent=False)

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        """Scalar loss for (N, 3, H, W) images in [-1, 1]; gradients reach `fake` only."""
        names = list(self.layers)
        fake_features = self.vgg(fake * self.scale + self.shift, names)
        with torch.no_grad():
            real_features = self.vgg(real * self.scale + self.shift, names)
        terms = [weight * F.l1_loss(fake_features[name], real_features[name]) for name, weight in self.layers.items()]
        return torch.stack(terms).sum()
