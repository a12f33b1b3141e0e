"""One file for the whole restoration model: the four trained networks' weights and their config.

A run folder holds one training stage per subfolder (see `restore.train`); `export` gathers each stage's
latest networks into a single safetensors file, so a user ships or downloads one file, and `load_model`
rebuilds the networks from it. Safetensors only — the file is plain tensors plus string metadata and is
never unpickled, so loading a file from a stranger cannot run code.

File layout: tensor names are each network's `state_dict` names prefixed with `vae_a.`, `vae_b.`,
`mapping.` or `detector.`; metadata holds {"format": FORMAT, "config": JSON of the ModelConfig,
"stages": JSON of {stage: checkpoint it came from}}.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from degrade.writer import atomic_write
from restore import checkpoint
from restore.config import ConfigError, ModelConfig
from restore.nets.detector import ScratchDetector
from restore.nets.mapping import Mapping
from restore.nets.vae import VAE

FORMAT = "patina-restore/1"
# Training stage -> (network name in the exported file, key of that network in `load_stage`'s result).
STAGES = {
    "vae-a": ("vae_a", "vae"),
    "vae-b": ("vae_b", "vae"),
    "mapping": ("mapping", "mapping"),
    "detector": ("detector", "detector"),
}
NETWORKS = tuple(name for name, _ in STAGES.values())


class ExportError(ValueError):
    """A run that cannot be exported or a model file that cannot be loaded; the message names the path."""


def build_networks(config: ModelConfig) -> dict[str, nn.Module]:
    """Freshly initialised networks of `config`, keyed as in the exported file."""
    return {
        "vae_a": VAE(config.vae),
        "vae_b": VAE(config.vae),
        "mapping": Mapping(config.mapping),
        "detector": ScratchDetector(config.detector),
    }


def save_model(
    path: Path, config: ModelConfig, nets: dict[str, nn.Module], stages: dict[str, str], half: bool = False
) -> Path:
    """Write `nets` (the four networks, keyed as `NETWORKS`) with `config` and `stages` (which checkpoint
    each came from) to `path` atomically; `half` stores floating-point tensors as float16, halving the
    file (they load back into float32 networks; a restoration changes by at most a grey level or so).
    The networks must have exactly the shapes `config` describes, so that `load_model` can rebuild them:
    anything else is refused here rather than at load time."""
    path = Path(path)
    if set(nets) != set(NETWORKS):
        raise ExportError(f"{path}: expected networks {', '.join(NETWORKS)}, got {', '.join(sorted(nets))}")
    with torch.device("meta"):  # shapes only, no memory and no random init
        reference = build_networks(config)
    tensors: dict[str, torch.Tensor] = {}
    for name in NETWORKS:
        state = nets[name].state_dict()
        _check_tensors(path, name, {k: v.shape for k, v in state.items()}, reference[name].state_dict())
        # clone: safetensors refuses tensors that share memory (a view of a parameter, tied weights).
        for key, value in state.items():
            value = value.detach().to("cpu", copy=True).contiguous()
            tensors[f"{name}.{key}"] = value.half() if half and value.is_floating_point() else value
    metadata = {"format": FORMAT, "config": json.dumps(config.to_dict()), "stages": json.dumps(stages)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save(tensors, metadata))
    return path


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[ModelConfig, dict[str, nn.Module]]:
    """The config and the four networks (keyed as `NETWORKS`, in eval mode, on `device`) stored in `path`.

    Strict: a file that is not safetensors, of another format, or whose tensors do not match the config's
    networks exactly (a missing, unexpected or misshapen tensor) is an `ExportError` naming the file."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                found = f"format {metadata['format']!r}" if "format" in metadata else "no format tag"
                raise ExportError(f"{path}: not a Patina restoration model ({found}, expected {FORMAT!r})")
            config = _config(path, metadata)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except SafetensorError as exc:
        raise ExportError(f"{path}: not a safetensors file ({exc})") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    nets = build_networks(config)
    grouped: dict[str, dict[str, torch.Tensor]] = {name: {} for name in NETWORKS}
    for key, tensor in tensors.items():
        name, _, rest = key.partition(".")
        if name not in grouped:
            raise ExportError(f"{path}: unexpected tensor {key!r} (networks: {', '.join(NETWORKS)})")
        grouped[name][rest] = tensor
    for name, net in nets.items():
        _check_tensors(path, name, {k: v.shape for k, v in grouped[name].items()}, net.state_dict())
        net.load_state_dict(grouped[name])
        net.to(device).eval()
    return config, nets


def export(run: Path, out: Path, half: bool = False, mapping_step: int | None = None) -> Path:
    """Gather the latest networks of the four stages of run folder `run` into the model file `out`, or the
    mapping's checkpoint at `mapping_step` instead of its latest (a run's best may lie before its end).

    Each stage folder (`run/vae-a`, ...) must hold a trained checkpoint, each trained with the mapping's
    config in the sections its network depends on (`restore.stages.SECTIONS`; the file gets the mapping's
    config), and the mapping must have been trained between the very VAE checkpoints being
    exported (its latent spaces are theirs): otherwise an `ExportError` (or a `TrainError` for an
    unreadable checkpoint) names the folder."""
    # Training code loads lazily: loading a model file never needs it.
    from restore.stages import config_difference
    from restore.train import load_stage

    run = Path(run)
    if not run.is_dir():
        raise ExportError(f"{run}: no such run folder")
    configs: dict[str, ModelConfig] = {}
    nets: dict[str, nn.Module] = {}
    latest: dict[str, str] = {}
    for stage, (name, key) in STAGES.items():
        folder = run / stage
        pointer = folder / "latest"
        if not pointer.is_file():
            raise ExportError(
                f"{folder}: no trained {stage} stage (no 'latest' checkpoint); run `restore train {stage} ... "
                f"--out {run}` first"
            )
        latest[stage] = pointer.read_text("utf-8").strip()
        if stage == "mapping" and mapping_step is not None:
            latest[stage] = checkpoint.stem(mapping_step)
        configs[stage], loaded = load_stage(folder, name=latest[stage])
        nets[name] = loaded[key]
    reference = configs["mapping"]
    for stage, config in configs.items():
        difference = config_difference(stage, reference.to_dict(), config.to_dict())
        if difference:
            raise ExportError(
                f"{run / stage}: trained with a different config than {run / 'mapping'} ({difference}); "
                "retrain it with the same --config"
            )
    _check_mapping_vaes(run, latest)
    stages = {stage: f"{stage}/{stem}" for stage, stem in latest.items()}
    return save_model(out, reference, nets, stages, half=half)


def _check_mapping_vaes(run: Path, latest: dict[str, str]) -> None:
    """Refuse a mapping trained against other VAE checkpoints than the run's latest ones (VAE training
    continued after the mapping, or the mapping loaded VAEs from another run with --vae-a/--vae-b that `run`
    does not hold: a run folder composed of links to the folders the mapping was trained with exports)."""
    description = run / "mapping" / f"{latest['mapping']}.json"
    try:
        meta = json.loads(description.read_text("utf-8"))
        options, used = meta["options"], meta["vaes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{description}: unreadable checkpoint description ({exc})") from None
    for stage in ("vae-a", "vae-b"):
        # Both paths as the training command saw them, so the comparison holds wherever the run moved since.
        own = Path(options["out"]) / stage
        given = options.get(stage.replace("-", "_"))
        if given is not None and Path(given).resolve() not in (own.resolve(), (run / stage).resolve()):
            raise ExportError(
                f"{run / 'mapping'}: trained against the {stage} in {given}, not this run's; export needs the "
                "VAEs the mapping was trained with (train the mapping with this run's VAEs)"
            )
        if used.get(stage) != latest[stage]:
            raise ExportError(
                f"{run / 'mapping'}: trained against {stage}/{used.get(stage)}, but {run / stage} now ends at "
                f"{latest[stage]}; export needs the VAEs the mapping was trained with (move {run / 'mapping'} "
                "away and train the mapping again)"
            )


def parameter_count(nets: dict[str, nn.Module]) -> int:
    return sum(p.numel() for net in nets.values() for p in net.parameters())


def _config(path: Path, metadata: dict[str, str]) -> ModelConfig:
    try:
        return ModelConfig.from_dict(json.loads(metadata["config"]))
    except KeyError:
        raise ExportError(f"{path}: no model config in the file's metadata") from None
    except (json.JSONDecodeError, ConfigError) as exc:
        raise ExportError(f"{path}: unusable model config ({exc})") from None


def _check_tensors(path: Path, name: str, shapes: dict[str, torch.Size], expected: dict[str, torch.Tensor]) -> None:
    """Refuse a missing, unexpected or misshapen tensor of network `name`, naming the first one."""
    for key, tensor in expected.items():
        if key not in shapes:
            raise ExportError(f"{path}: missing tensor {name}.{key}")
        if tuple(shapes[key]) != tuple(tensor.shape):
            raise ExportError(
                f"{path}: tensor {name}.{key} has shape {tuple(shapes[key])}, the config's {name} needs "
                f"{tuple(tensor.shape)}"
            )
    for key in shapes.keys() - expected.keys():
        raise ExportError(f"{path}: unexpected tensor {name}.{key} (not in the config's {name})")
