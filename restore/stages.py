"""The four training stages of Wan et al. (CVPR 2020): what each optimises, with which loss weights.

- `vae-b`: VAE B reconstructs clean photos (L1 + SSIM + KL + LSGAN with feature matching);
- `vae-a`: VAE A reconstructs degraded photos, and real old photos when given; a latent discriminator then
  aligns the two domains in latent space;
- `mapping`: T maps VAE A's latent of a degraded photo to VAE B's latent of its clean original, both VAEs
  frozen (latent L1, and L1 + SSIM + conditional LSGAN with feature matching on B's decoding);
- `detector`: the U-Net marks scratch pixels (focal loss against the generated mask).

A stage is its trainable modules, one Adam optimiser per module (same name), `step` (one update of all of
them on a batch) and `evaluate` (metrics and sample-grid columns on a fixed batch). Adversarial updates run
the generator first, against the discriminator's current weights, then the discriminator on the same
(detached) fake: pix2pixHD's order, with every discriminator pass of an update in one forward so that
DistributedDataParallel sees one forward per backward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from degrade.bench.metrics import scores_from_counts
from restore.checkpoint import CheckpointError, flatten_optimizer, unflatten_optimizer
from restore.config import ModelConfig, first_difference
from restore.distributed import unwrap
from restore.losses import dice_loss, feature_matching, focal_loss, latent_l1, lsgan_d, lsgan_g, ssim, ssim_loss
from restore.nets.detector import ScratchDetector, to_detector_input
from restore.nets.discriminators import LatentDiscriminator, MultiScalePatchGAN
from restore.nets.mapping import Mapping
from restore.nets.vae import VAE, kl

STAGES = ("vae-a", "vae-b", "mapping", "detector")
NETWORKS = {"vae-a": "vae", "vae-b": "vae", "mapping": "mapping", "detector": "detector"}
"""Per stage, the name of the network inference uses (a module of the stage and a checkpoint tensor prefix)."""
SECTIONS = {"vae-a": ("vae",), "vae-b": ("vae",), "mapping": ("vae", "mapping"), "detector": ("detector",)}
"""Per stage, the sections of a ModelConfig its network depends on: a stage trained under a config that
differs elsewhere (say a VAE trained before the mapping gained an option) still fits a model of this one."""
TRAINED_SECTIONS = {stage: (*sections, "discriminator") for stage, sections in SECTIONS.items()} | {
    "detector": SECTIONS["detector"]
}
"""Per stage, the sections its training state depends on (what a resume must match): its network's, plus
the discriminator's for the stages trained against one (all but the detector)."""
BETAS = (0.5, 0.999)  # Adam's, for generators and discriminators alike (pix2pixHD, the official release)

Batch = dict[str, Any]
"""A collated dataset batch on the training device: `degraded`, `clean` (N, 3, H, W) in [-1, 1], `mask`
(N, 1, H, W) in {0, 1}; a real-old batch has `image` instead."""


@dataclass(frozen=True)
class Weights:
    """Loss weights, after the paper and the official release (which used a VGG loss where we use pixel
    L1 + SSIM: no perceptual weights ship with Patina).

    `l1` 10: pixel L1 of reconstructions and restorations (the release's weight on its VGG loss);
    `ssim` 1: 1 - SSIM, which keeps edges that L1 alone blurs;
    `kl` 1: on `restore.nets.vae.kl` = 0.5 * mean^2 (the release: 1 on mean^2, so twice this);
    `gan` 1: LSGAN generator loss (averaged over scales, where pix2pixHD sums);
    `feature_matching` 40: the release's lambda_feat = 10 on pix2pixHD's per-layer sum, 4x our mean;
    `latent` 60: the paper's lambda_1 on the mapping's latent L1;
    `identity` 0: latent L1 of T on the clean photo's A-latent against its B-latent (CycleGAN's identity
    loss; not in the paper): it teaches T to leave undamaged photos alone instead of "restoring" every
    input toward the training set's vivid colours;
    `latent_gan` 1: VAE A's latent-space alignment of real old photos;
    `focal_gamma` 2 and `pos_weight` (none): the detector's focal loss;
    `dice` 0: the detector's soft Dice loss (`restore.losses.dice_loss`) added to the focal loss.
    """

    l1: float = 10.0
    ssim: float = 1.0
    kl: float = 1.0
    gan: float = 1.0
    feature_matching: float = 40.0
    latent: float = 60.0
    identity: float = 0.0
    latent_gan: float = 1.0
    focal_gamma: float = 2.0
    pos_weight: float | None = None
    dice: float = 0.0

    @property
    def adversarial(self) -> bool:
        """Whether the generators get GAN losses; without them no discriminator is built or trained."""
        return self.gan > 0 or self.feature_matching > 0


class Stage:
    """Trainable `modules` by name (the one inference uses under `NETWORKS[stage]`), an Adam optimiser per
    module, `step` and `evaluate`; `columns` names the sample grid's columns."""

    columns: tuple[str, ...]
    #: Whether `build` puts the stage channels-last on the CPU, where oneDNN's convolutions then skip their
    #: per-layer reorders: the VAE and mapping stages step about a tenth faster so, the detector's instance
    #: norms and narrow convolutions slower (`python benchmarks/restore_layout.py --train`).
    channels_last_on_cpu = False

    def __init__(self, modules: dict[str, nn.Module], lr: float, device: torch.device, weights: Weights) -> None:
        self.modules = {name: module.to(device) for name, module in modules.items()}
        self.optimizers = {
            name: torch.optim.Adam(module.parameters(), lr=lr, betas=BETAS) for name, module in self.modules.items()
        }
        self.weights = weights
        self.layout = torch.contiguous_format  # of the networks, and of the batches they are given

    def networks(self) -> list[nn.Module]:
        """Every network the stage runs: its trainable modules and any frozen ones."""
        return list(self.modules.values())

    def set_layout(self, layout: torch.memory_format) -> None:
        """Put every network in `layout` (before `wrap`); batches follow `self.layout`. Only the speed changes."""
        self.layout = layout
        for net in self.networks():
            net.to(memory_format=layout)

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Replace each module by `wrap(module)` (DistributedDataParallel); optimisers keep the parameters."""
        self.modules = {name: wrap(module) for name, module in self.modules.items()}

    def set_lr(self, lr: float) -> None:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def initialise(self, load: Callable[[], Batch]) -> dict[str, float]:
        """Data-driven initialisation of a fresh run (never on resume) from the batch `load()` reads, called
        only by a stage that has something to initialise; returns what it measured."""
        return {}

    def step(self, batch: Batch, old: Batch | None = None) -> dict[str, Tensor]:
        """One update of every module on `batch` (and `old`, real old photos, for vae-a); detached losses."""
        raise NotImplementedError

    def evaluate(self, batch: Batch) -> tuple[dict[str, float], list[Tensor]]:
        """(metrics, grid columns (N, 1 or 3, H, W) in [0, 1], titled by `columns`) on `batch`, in eval mode,
        without gradients."""
        nets = [unwrap(module) for module in self.modules.values()]
        for net in nets:
            net.eval()
        try:
            with torch.no_grad():
                return self._evaluate(batch)
        finally:
            for net in nets:
                net.train()

    def _evaluate(self, batch: Batch) -> tuple[dict[str, float], list[Tensor]]:
        raise NotImplementedError

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Every module's weights (`<module>.<key>`) and optimiser state, as (tensors, JSON-safe meta)."""
        tensors: dict[str, Tensor] = {}
        optimizers: dict[str, Any] = {}
        for name, module in self.modules.items():
            tensors.update({f"{name}.{key}": value for key, value in unwrap(module).state_dict().items()})
            flat, optimizers[name] = flatten_optimizer(name, self.optimizers[name].state_dict())
            tensors.update(flat)
        return tensors, {"modules": sorted(self.modules), "optimizers": optimizers}

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """Restore what `state` returned (before `wrap`)."""
        if sorted(meta["modules"]) != sorted(self.modules):
            raise CheckpointError(
                f"the checkpoint holds modules {', '.join(meta['modules'])}, this run trains "
                f"{', '.join(sorted(self.modules))} (was it trained with --real-old and resumed without, or back?)"
            )
        for name, module in self.modules.items():
            prefix = f"{name}."
            unwrap(module).load_state_dict(
                {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
            )
            self.optimizers[name].load_state_dict(unflatten_optimizer(name, tensors, meta["optimizers"][name]))


def _optimise(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@contextmanager
def _frozen(module: nn.Module) -> Iterator[nn.Module]:
    """The bare module with its parameters out of autograd: a discriminator judging the generator's output
    gets no gradient (and, unwrapped, triggers no DistributedDataParallel gradient sync)."""
    net = unwrap(module)
    net.requires_grad_(False)
    try:
        yield net
    finally:
        net.requires_grad_(True)


def _split(outputs: list[list[Tensor]], n: int) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
    """Multi-scale outputs of a batch (first `n` samples, rest) -> the two halves' outputs."""
    return [[f[:n] for f in scale] for scale in outputs], [[f[n:] for f in scale] for scale in outputs]


def _adversarial(disc: nn.Module, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """The generator's (LSGAN, feature-matching) losses for `fake` against multi-scale `disc`."""
    with _frozen(disc) as net:
        fake_out = net(fake)
        with torch.no_grad():
            real_out = net(real)
    return lsgan_g(fake_out), feature_matching(real_out, fake_out)


def _update_discriminator(disc: nn.Module, optimizer: torch.optim.Optimizer, real: Tensor, fake: Tensor) -> Tensor:
    """One LSGAN update of `disc` (multi-scale outputs, or a bare logit map) on real vs detached fake, both
    in one batch: instance norm is per sample, so this equals two passes."""
    outputs = disc(torch.cat([real, fake.detach()]))
    outputs = [[outputs]] if isinstance(outputs, Tensor) else outputs
    loss = lsgan_d(*_split(outputs, real.shape[0]))
    _optimise(optimizer, loss)
    return loss.detach()


def _weighted(losses: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    return torch.stack([weights[name] * losses[name] for name in weights]).sum()


def _shown(images: Tensor) -> Tensor:
    """Images in [-1, 1] -> [0, 1], for the sample grid."""
    return (images.clamp(-1, 1) + 1) / 2


def psnr(output: Tensor, target: Tensor) -> float:
    """Mean PSNR in dB over the batch of (N, C, H, W) images in [-1, 1] (peak-to-peak 2; output clamped)."""
    mse = (output.clamp(-1, 1) - target).square().flatten(1).mean(1)
    return (10 * torch.log10(4 / mse.clamp_min(1e-10))).mean().item()


def image_metrics(output: Tensor, target: Tensor) -> dict[str, float]:
    return {"psnr": psnr(output, target), "ssim": ssim(output.clamp(-1, 1), target).item()}


def mask_metrics(probability: Tensor, target: Tensor) -> dict[str, float]:
    """Precision, recall, F1 and IoU of `probability` > 0.5 against a {0, 1} mask, pooled over the batch
    (1 where there is nothing to find and nothing was found), as the benchmark scores masks."""
    predicted, actual = probability > 0.5, target > 0.5
    tp = (predicted & actual).sum().item()
    fp = (predicted & ~actual).sum().item()
    fn = (~predicted & actual).sum().item()
    return scores_from_counts(tp, fp, fn)


class VAEStage(Stage):
    """VAE B on clean photos (`vae-b`) or VAE A on degraded ones (`vae-a`): reconstruction L1 + SSIM, KL on
    the latent mean, unconditional multi-scale LSGAN + feature matching on the reconstruction (as the
    release's --no_cgan). With real old photos (vae-a only) they are reconstructed alongside, and a latent
    discriminator learns synthetic latents (label 1) from real-old ones (label 0) while the encoder learns
    to make real-old latents score 1: the release's direction, pulling real old photos into the part of the
    latent space that the mapping is trained on."""

    columns = ("input", "output")
    channels_last_on_cpu = True

    def __init__(
        self, stage: str, config: ModelConfig, lr: float, device: torch.device, weights: Weights, real_old: bool
    ) -> None:
        modules: dict[str, nn.Module] = {"vae": VAE(config.vae)}
        if weights.adversarial:
            modules["discriminator"] = MultiScalePatchGAN(config.discriminator, config.vae.in_channels)
        if real_old:
            modules["latent_discriminator"] = LatentDiscriminator(config.vae.latent, config.discriminator.latent_base)
        super().__init__(modules, lr, device, weights)
        self.source = "clean" if stage == "vae-b" else "degraded"

    def step(self, batch: Batch, old: Batch | None = None) -> dict[str, Tensor]:
        x = batch[self.source]
        synthetic = x.shape[0]
        if old is not None:
            x = torch.cat([x, old["image"]])
        recon, mean, _ = self.modules["vae"](x)
        losses = {"l1": F.l1_loss(recon, x), "ssim": ssim_loss(recon, x), "kl": kl(mean)}
        w = self.weights
        weights = {"l1": w.l1, "ssim": w.ssim, "kl": w.kl}
        if w.adversarial:
            losses["gan"], losses["feat"] = _adversarial(self.modules["discriminator"], recon, x)
            weights |= {"gan": w.gan, "feat": w.feature_matching}
        if old is not None:
            with _frozen(self.modules["latent_discriminator"]) as latent_disc:
                losses["latent_gan"] = lsgan_g([[latent_disc(mean[synthetic:])]])
            weights["latent_gan"] = w.latent_gan
        _optimise(self.optimizers["vae"], _weighted(losses, weights))
        if w.adversarial:
            losses["d"] = _update_discriminator(
                self.modules["discriminator"], self.optimizers["discriminator"], x, recon
            )
        if old is not None:
            losses["latent_d"] = _update_discriminator(
                self.modules["latent_discriminator"],
                self.optimizers["latent_discriminator"],
                mean[:synthetic].detach(),
                mean[synthetic:],
            )
        return {name: loss.detach() for name, loss in losses.items()}

    def _evaluate(self, batch: Batch) -> tuple[dict[str, float], list[Tensor]]:
        x = batch[self.source]
        vae = unwrap(self.modules["vae"])
        recon = vae.decode(vae.encode(x))
        return image_metrics(recon, x), [_shown(x), _shown(recon)]


class MappingStage(Stage):
    """Mapping T between frozen VAE A (encoder) and VAE B: latent L1 between T(A(degraded), mask) and
    B(clean) (detached), plus L1, SSIM and LSGAN + feature matching on B's decoding of T's output. The
    discriminator is conditioned on the degraded input (it sees input and output channels stacked, as the
    release's mapping stage): it judges whether the restoration fits its input, not only whether it looks
    clean. The mask is the generated scratch mask, which the partial nonlocal block fills."""

    columns = ("input", "mask", "output", "target")
    channels_last_on_cpu = True

    def __init__(
        self, config: ModelConfig, lr: float, device: torch.device, weights: Weights, vae_a: nn.Module, vae_b: nn.Module
    ) -> None:
        modules: dict[str, nn.Module] = {"mapping": Mapping(config.mapping)}
        if weights.adversarial:
            modules["discriminator"] = MultiScalePatchGAN(config.discriminator, 2 * config.vae.in_channels)
        super().__init__(modules, lr, device, weights)
        self.vae_a, self.vae_b = (vae.to(device).eval().requires_grad_(False) for vae in (vae_a, vae_b))

    def networks(self) -> list[nn.Module]:
        return [*super().networks(), self.vae_a, self.vae_b]

    def _restore(self, mapping: nn.Module, degraded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            latent = self.vae_a.encode(degraded)
        mapped = mapping(latent, mask)
        return mapped, self.vae_b.decode(mapped)

    def initialise(self, load: Callable[[], Batch]) -> dict[str, float]:
        """With a skip path: fit it to the linear translation of A's latents of the clean crops into B's, so
        training starts from a mapping that carries the photo through and learns only the restoration."""
        mapping = unwrap(self.modules["mapping"])
        if mapping.skip is None:
            return {}
        batch = load()
        with torch.no_grad():
            source, target = self.vae_a.encode(batch["clean"]), self.vae_b.encode(batch["clean"])
        return {"skip_fit_error": mapping.fit_skip(source, target)}

    def step(self, batch: Batch, old: Batch | None = None) -> dict[str, Tensor]:
        degraded, clean, mask = batch["degraded"], batch["clean"], batch["mask"]
        w, n = self.weights, len(degraded)
        with torch.no_grad():
            target = self.vae_b.encode(clean)
            # With an identity loss T also maps the clean photo (no holes), in the same forward (one per backward).
            inputs = degraded
            if w.identity > 0:
                inputs, mask = torch.cat([degraded, clean]), torch.cat([mask, torch.zeros_like(mask)])
            latent = self.vae_a.encode(inputs)
        mapped = self.modules["mapping"](latent, mask)
        restored = self.vae_b.decode(mapped[:n])
        losses = {
            "latent": latent_l1(mapped[:n], target),
            "l1": F.l1_loss(restored, clean),
            "ssim": ssim_loss(restored, clean),
        }
        weights = {"latent": w.latent, "l1": w.l1, "ssim": w.ssim}
        if w.identity > 0:
            losses["identity"] = latent_l1(mapped[n:], target)
            weights["identity"] = w.identity
        if w.adversarial:
            fake, real = torch.cat([degraded, restored], 1), torch.cat([degraded, clean], 1)
            losses["gan"], losses["feat"] = _adversarial(self.modules["discriminator"], fake, real)
            weights |= {"gan": w.gan, "feat": w.feature_matching}
        _optimise(self.optimizers["mapping"], _weighted(losses, weights))
        if w.adversarial:
            losses["d"] = _update_discriminator(
                self.modules["discriminator"], self.optimizers["discriminator"], real, fake
            )
        return {name: loss.detach() for name, loss in losses.items()}

    def _evaluate(self, batch: Batch) -> tuple[dict[str, float], list[Tensor]]:
        degraded, clean, mask = batch["degraded"], batch["clean"], batch["mask"]
        _, restored = self._restore(unwrap(self.modules["mapping"]), degraded, mask)
        metrics = image_metrics(restored, clean)
        metrics["input_psnr"] = psnr(degraded, clean)
        return metrics, [_shown(degraded), mask, _shown(restored), _shown(clean)]


class DetectorStage(Stage):
    """Scratch detector on the luma of the degraded photo: focal loss of its logits against the mask, plus
    `Weights.dice` times their soft Dice loss."""

    columns = ("input", "output", "target")

    def __init__(self, config: ModelConfig, lr: float, device: torch.device, weights: Weights) -> None:
        super().__init__({"detector": ScratchDetector(config.detector)}, lr, device, weights)
        self.gray = config.detector.in_channels == 1

    def _logits(self, detector: nn.Module, degraded: Tensor) -> Tensor:
        return detector(to_detector_input(degraded) if self.gray else degraded)

    def step(self, batch: Batch, old: Batch | None = None) -> dict[str, Tensor]:
        logits = self._logits(self.modules["detector"], batch["degraded"])
        focal = focal_loss(logits, batch["mask"], gamma=self.weights.focal_gamma, pos_weight=self.weights.pos_weight)
        losses, loss = {"focal": focal}, focal
        if self.weights.dice > 0:
            losses["dice"] = dice_loss(logits, batch["mask"])
            loss = loss + self.weights.dice * losses["dice"]
        _optimise(self.optimizers["detector"], loss)
        return {name: value.detach() for name, value in losses.items()}

    def _evaluate(self, batch: Batch) -> tuple[dict[str, float], list[Tensor]]:
        probability = torch.sigmoid(self._logits(unwrap(self.modules["detector"]), batch["degraded"]))
        return mask_metrics(probability, batch["mask"]), [_shown(batch["degraded"]), probability, batch["mask"]]


def config_difference(
    stage: str, a: dict[str, Any], b: dict[str, Any], sections: dict[str, tuple[str, ...]] = SECTIONS
) -> str:
    """`first_difference` of two configs' dicts restricted to the sections stage `stage` depends on
    (`SECTIONS`: its network; `TRAINED_SECTIONS`: its training state)."""
    return first_difference({k: a.get(k) for k in sections[stage]}, {k: b.get(k) for k in sections[stage]})


def build_network(stage: str, config: ModelConfig) -> tuple[str, nn.Module]:
    """(name, freshly initialised network) of what inference uses from stage `stage` (see NETWORKS)."""
    if stage not in NETWORKS:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    if stage == "mapping":
        return "mapping", Mapping(config.mapping)
    if stage == "detector":
        return "detector", ScratchDetector(config.detector)
    return "vae", VAE(config.vae)


def build(
    stage: str,
    config: ModelConfig,
    lr: float,
    device: torch.device,
    weights: Weights = Weights(),  # noqa: B008 (frozen, so one shared default is safe)
    real_old: bool = False,
    vaes: tuple[nn.Module, nn.Module] | None = None,
    channels_last: bool | None = None,
) -> Stage:
    """Stage `stage` of `config`, freshly initialised from torch's RNG, on `device`. `real_old`: vae-a gets a
    latent discriminator; `vaes`: the trained (VAE A, VAE B) that the mapping stage needs; `channels_last`:
    the networks' layout (None: `Stage.channels_last_on_cpu` on the CPU, contiguous elsewhere)."""
    built: Stage
    if stage in ("vae-a", "vae-b"):
        built = VAEStage(stage, config, lr, device, weights, real_old and stage == "vae-a")
    elif stage == "mapping":
        if vaes is None:
            raise ValueError("the mapping stage needs the trained VAE A and VAE B")
        built = MappingStage(config, lr, device, weights, *vaes)
    elif stage == "detector":
        built = DetectorStage(config, lr, device, weights)
    else:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    if channels_last is None:
        channels_last = built.channels_last_on_cpu and device.type == "cpu"
    if channels_last:
        built.set_layout(torch.channels_last)
    return built
