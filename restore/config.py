"""Model configurations as plain data: every width and depth of the four networks, named presets, and a
strict round trip through dictionaries (saved beside every checkpoint and inside exported weights).

Presets:
- `tiny`: a few thousand parameters per network, for tests (a training step in milliseconds);
- `small`: trains on 2 CPU cores in hours (the shipped weights);
- `paper`: the widths of Wan et al. (CVPR 2020) — a 64-channel latent, a 512-channel mapping network,
  a U-Net detector with 64 channels at full resolution — for GPU users.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any


@dataclass(frozen=True)
class VAEConfig:
    """One VAE (used twice: A for degraded and real old photos, B for clean ones).

    7x7 stem of `base` channels, two stride-2 downsamplings (2x channels each, capped at `max_channels`),
    `res_blocks` residual blocks, a 1x1 projection to `latent` channels at H/4 x W/4; the decoder mirrors
    it and ends in tanh. Mean-only encoder: in training `latent_noise` std Gaussian noise is added to the
    latent and a KL term pulls the latent mean toward zero.

    `norm`: instance normalisation after each convolution, as the paper. It makes the network blind to a
    photo's global colour and contrast (a constant added to the input, or a gain, is removed by the first
    norm), so the decoder can only guess them; the `small` config goes without, which lets the model
    learn to undo fading, the commonest damage of old prints.
    """

    in_channels: int = 3
    base: int = 64
    max_channels: int = 256
    latent: int = 64
    res_blocks: int = 4
    latent_noise: float = 1.0
    norm: bool = True


@dataclass(frozen=True)
class MappingConfig:
    """Latent mapping T from VAE A's latent space to VAE B's.

    `widen` 3x3 convs lift `latent` channels to `width`; `res_blocks` residual blocks follow on each side
    of the partial nonlocal block (when `nonlocal_block`), whose query/key projections have
    `attention_channels` channels; hole positions take the attention branch followed by
    `hole_res_blocks` residual blocks, valid positions keep their local features; narrowing convs return
    to `latent` channels. Attention runs over `attention_chunk` queries at a time (bounded memory).
    `norm`: instance normalisation in its convolutions (see `VAEConfig.norm` for why `small` has none).

    `skip`: a linear 1x1 path from A's latent to B's, added to the network's output outside holes, its
    last conv starting at zero, so T starts as the linear translation between the two latent spaces
    (initialised by least squares on clean crops, `Mapping.fit_skip`). The two VAEs encode the same photo
    almost linearly related (B decodes that translation of A's latent of held-out chelsea at 30.6 dB), so
    the convolutions only learn the restoration, not to carry every detail through; without it the `small`
    mapping, trained on CPU, repainted whole photos at ~22 dB. `global_context`: the photo's per-channel
    latent statistics (mean and spread over valid positions) are fed to every position, since fading and
    colour casts are global and a stack of 3x3 convs sees only a neighbourhood. `context_film`: the context
    also reads each channel's 2nd and 98th percentiles (black and white points) and scales and shifts the
    features (FiLM) instead of adding a bias, since undoing a fade is a gain and an offset
    (`restore.nets.mapping.GlobalContext`). All three are Patina's additions to the paper's T and off in
    `paper`.
    """

    latent: int = 64
    width: int = 512
    widen: int = 2
    res_blocks: int = 3
    nonlocal_block: bool = True
    attention_channels: int = 64
    hole_res_blocks: int = 3
    attention_chunk: int = 4096
    norm: bool = True
    skip: bool = False
    global_context: bool = False
    context_film: bool = False


@dataclass(frozen=True)
class DetectorConfig:
    """Scratch detector: a U-Net on grayscale input, `depth` blur-pooled downsamplings from `base`
    channels (doubling, capped at `max_channels`), one logit per pixel out."""

    in_channels: int = 1
    base: int = 64
    depth: int = 4
    max_channels: int = 512


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN (least squares): `scales` discriminators on successively halved images, each
    with `layers` stride-2 convs from `base` channels (capped at `max_channels`); `latent_base` channels
    for VAE A's latent discriminator (synthetic vs real-old latents)."""

    base: int = 64
    layers: int = 3
    scales: int = 2
    max_channels: int = 512
    latent_base: int = 64


@dataclass(frozen=True)
class ModelConfig:
    """All four networks' shapes; `name` is the preset it came from (or a user's label)."""

    name: str = "paper"
    vae: VAEConfig = field(default_factory=VAEConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """The config `data` describes; unknown or missing-section keys are an error naming the key."""
        return _from_dict(cls, data, "config")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the offending key."""


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            values[name] = _from_dict(type(default), value, f"{where}.{name}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected true or false, got {value!r}")
            values[name] = value
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{name}: expected a number, got {value!r}")
            if isinstance(default, int) and value != int(value):
                raise ConfigError(f"{where}.{name}: expected an integer, got {value!r}")
            values[name] = type(default)(value)
        else:
            values[name] = str(value)
    return cls(**values)


def first_difference(a: Any, b: Any, where: str = "") -> str:
    """'key: a != b' for the first differing leaf of two nested dicts (e.g. two configs' `to_dict()`), or ''
    when they are equal: what an error about mismatched configs should name."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            found = first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return ""
    return "" if a == b else f"{where}: {a!r} != {b!r}"


PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        name="tiny",
        vae=VAEConfig(base=8, max_channels=16, latent=8, res_blocks=1),
        mapping=MappingConfig(
            latent=8, width=16, widen=1, res_blocks=1, attention_channels=8, hole_res_blocks=1, attention_chunk=64
        ),
        detector=DetectorConfig(base=8, depth=2, max_channels=16),
        discriminator=DiscriminatorConfig(base=8, layers=2, scales=1, max_channels=16, latent_base=8),
    ),
    "small": ModelConfig(
        name="small",
        vae=VAEConfig(base=32, max_channels=128, latent=32, res_blocks=2, latent_noise=0.1, norm=False),
        mapping=MappingConfig(
            latent=32,
            width=128,
            widen=2,
            res_blocks=2,
            attention_channels=32,
            hole_res_blocks=2,
            attention_chunk=2048,
            norm=False,
            skip=True,
            global_context=True,
            context_film=True,
        ),
        detector=DetectorConfig(base=16, depth=3, max_channels=128),
        discriminator=DiscriminatorConfig(base=32, layers=3, scales=2, max_channels=256, latent_base=32),
    ),
    "paper": ModelConfig(name="paper"),
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name (`tiny`, `small`, `paper`), with top-level sections optionally replaced."""
    try:
        config = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model config {name!r} (presets: {', '.join(PRESETS)})") from None
    return replace(config, **overrides) if overrides else config
