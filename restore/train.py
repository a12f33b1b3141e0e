"""Training of the restoration model, one stage at a time (see `restore.stages` for what each optimises).

`train(TrainOptions(stage=..., out=runs/x, pairs=...))` trains `stage` into `runs/x/<stage>/`:

    checkpoint-00001000.safetensors / .json   every `checkpoint_every` steps and at the end (restore.checkpoint)
    latest                                    the newest checkpoint's stem
    log.jsonl                                 per step {step, losses, lr, seconds}; per validation
                                              {step, validation, sample, columns}; first, for a stage
                                              with a data-driven initialisation, {step: 0, initialised}
    samples/step-00001000.png                 validation grid: one row per sample (columns: Stage.columns)

Schedule: Adam (betas 0.5, 0.999) at `lr` until `decay_from` (default steps // 2), then linear to 0 at
`steps`, as in the paper. `batch` is per process. Every RNG is seeded from `seed`; a resumed run restores
weights, optimiser moments, RNG states and data positions, so on the CPU it ends bit-identical to an
uninterrupted one. Validation runs on a fixed batch: the first 4 samples of the training data at crops
drawn from another seed (no flips), the same at every validation; those are training photos at other crops
(there is no held-out split), so the metrics track fitting, comparable across steps. Under `torchrun`
(WORLD_SIZE > 1) see `restore.distributed`.
"""

from __future__ import annotations

import json
import time
import tomllib
import warnings
from collections import deque
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate
from tqdm import tqdm

from degrade.writer import atomic_write, encode_png
from restore import checkpoint, distributed, stages
from restore.checkpoint import CheckpointError
from restore.config import PRESETS, ConfigError, ModelConfig, model_config
from restore.data import JITTER_LIMITS, FolderDataset, Jitter, OnlineDataset, open_pairs

VALIDATION_SAMPLES = 4
VALIDATION_SEED = 7777  # added to `seed` for the validation crops: a stream no training epoch draws from
INITIALISE_SEED = 8888  # likewise for the crops of a fresh run's data-driven initialisation (Stage.initialise)
INITIALISE_SAMPLES = 32
HISTORY = 50  # log records kept in each checkpoint's JSON


@dataclass(frozen=True)
class TrainOptions:
    """What `train` trains (one stage), on which data, for how long and where; see the module docstring."""

    stage: str  # "vae-a" | "vae-b" | "mapping" | "detector"
    out: Path  # the run folder (runs/x); the stage writes into out / stage
    config: str = "small"  # preset name of restore.config (or a path to a JSON/TOML config file)
    pairs: Path | tuple[Path, ...] | None = None  # degrade-gen folder(s), either layout; several concatenate
    online: Path | None = None  # a degrade source (folder or "sample") degraded on the fly instead of pairs
    preset: str = "old-photo"  # degrade preset for online data
    saturation_jitter: float = 0.0  # chroma scale of the clean photos, log-uniform in exp(+-x) (restore.data)
    contrast_jitter: float = 0.0  # contrast scale of the clean photos, log-uniform in exp(+-x) (restore.data)
    hue_jitter: float = 0.0  # hue turn of the clean photos, uniform in +-x degrees (restore.data)
    real_old: Path | None = None  # folder of real old photos (VAE A's latent discriminator)
    vae_a: Path | None = None  # run-stage folders for the mapping stage (default out/vae-a, out/vae-b)
    vae_b: Path | None = None
    steps: int = 10000
    decay_from: int | None = None  # step where the linear LR decay to 0 starts (default steps // 2)
    until: int | None = None  # stop (with a checkpoint) after this step of the `steps` schedule; resume goes on
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    checkpoint_every: int = 1000  # 0: only at the end
    validate_every: int = 500  # 0: only at the end
    seed: int = 0
    workers: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    resume: bool = False
    progress: bool = True
    loss_weights: tuple[tuple[str, float], ...] = ()  # (name, value) overrides of stages.Weights


class TrainError(ValueError):
    """Training that cannot start or continue; the one-line message names the file, folder or option."""


def load_config(spec: str) -> ModelConfig:
    """A preset of `restore.config` by name, or the ModelConfig in a JSON or TOML file."""
    if spec in PRESETS:
        return model_config(spec)
    path = Path(spec)
    if not path.is_file():
        raise TrainError(f"config {spec!r}: neither a preset ({', '.join(PRESETS)}) nor a JSON/TOML file")
    try:
        text = path.read_text("utf-8")
        return ModelConfig.from_dict(tomllib.loads(text) if path.suffix == ".toml" else json.loads(text))
    except (ValueError, UnicodeDecodeError) as exc:  # JSON, TOML and ConfigError are all ValueErrors
        raise TrainError(f"{path}: not a model config ({exc})") from None


def learning_rate(step: int, options: TrainOptions) -> float:
    """LR of (0-based) step `step`: `lr` before `decay_from`, then linear, reaching 0 at `steps`."""
    start = options.steps // 2 if options.decay_from is None else options.decay_from
    return options.lr if step < start else options.lr * (options.steps - step) / (options.steps - start)


def min_crop(options: TrainOptions, config: ModelConfig) -> int:
    """Smallest crop (a multiple of 4) the stage's networks and losses take: the coarsest PatchGAN scale
    needs 3 * 2**layers pixels, SSIM its 11-pixel window, the latent discriminator a 4x4 latent, the
    detector 2 pixels at its coarsest level."""
    if options.stage == "detector":
        need = 2 ** (config.detector.depth + 1)
    else:
        need = max(11, 3 * 2 ** (config.discriminator.layers + config.discriminator.scales - 1))
        need = max(need, 16) if options.real_old is not None else need
    return -(-need // 4) * 4


def loss_weights(options: TrainOptions) -> stages.Weights:
    """The stage's loss weights: the defaults of `stages.Weights` with `options.loss_weights` replaced."""
    known = {f.name for f in fields(stages.Weights)}
    for name, value in options.loss_weights:
        if name not in known:
            raise TrainError(f"loss weight {name!r}: unknown (known: {', '.join(sorted(known))})")
        if not value >= 0:
            raise TrainError(f"loss weight {name}: must not be negative, got {value}")
    return stages.Weights(**dict(options.loss_weights))


def _check(options: TrainOptions, config: ModelConfig) -> None:
    o = options
    if o.stage not in stages.STAGES:
        raise TrainError(f"unknown stage {o.stage!r} (stages: {', '.join(stages.STAGES)})")
    if bool(o.pairs) == (o.online is not None):
        raise TrainError("give the training data as either pairs (degrade-gen output) or online (a photo source)")
    if o.real_old is not None and o.stage != "vae-a":
        raise TrainError(f"real_old feeds VAE A's latent discriminator; stage {o.stage} does not use it")
    if (o.vae_a is not None or o.vae_b is not None) and o.stage != "mapping":
        raise TrainError(f"vae_a/vae_b pick the VAEs of the mapping stage; stage {o.stage} does not use them")
    for name in ("steps", "batch"):
        if getattr(o, name) < 1:
            raise TrainError(f"{name} must be at least 1, got {getattr(o, name)}")
    for name in ("checkpoint_every", "validate_every", "workers", "decay_from", "until"):
        if (getattr(o, name) or 0) < 0:
            raise TrainError(f"{name} must not be negative, got {getattr(o, name)}")
    if not o.lr > 0:
        raise TrainError(f"lr must be positive, got {o.lr}")
    for look, top in JITTER_LIMITS.items():
        if not 0 <= getattr(o, f"{look}_jitter") <= top:
            raise TrainError(f"{look}_jitter must be in [0, {top:g}], got {getattr(o, f'{look}_jitter')}")
    loss_weights(o)
    if o.crop % 4 or o.crop < min_crop(o, config):
        raise TrainError(f"crop must be a multiple of 4 and at least {min_crop(o, config)} for {o.stage}, got {o.crop}")
    try:
        device = distributed.pick_device(o.device)
    except RuntimeError:
        raise TrainError(f"device {o.device!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise TrainError(f"device {o.device!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"device {o.device!r}: this torch sees no CUDA GPU (use a CUDA build, or device cpu)")


def _dataset(options: TrainOptions, seed: int, flips: bool = True, jitter: bool = False) -> Dataset:
    """The stage's data; `jitter` (training batches only) applies the saturation, contrast and hue jitter."""
    looks = Jitter(options.saturation_jitter, options.contrast_jitter, options.hue_jitter) if jitter else Jitter()
    if options.pairs:
        return open_pairs(options.pairs, options.crop, flips, seed, looks)
    return OnlineDataset(str(options.online), options.preset, options.crop, flips, seed, looks)


def _json_safe(value: Any) -> Any:
    """Option values for a checkpoint's JSON: paths as strings, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    return [_json_safe(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to(
    batch: dict[str, Any], device: torch.device, layout: torch.memory_format = torch.contiguous_format
) -> dict[str, Any]:
    """A batch on `device`, its images in the stage's memory `layout`."""
    return {
        k: v.to(device, non_blocking=True, memory_format=layout if v.ndim == 4 else torch.preserve_format)
        if isinstance(v, Tensor)
        else v
        for k, v in batch.items()
    }


def _read(folder: Path, name: str | None = None) -> tuple[str, dict[str, Tensor], dict[str, Any]]:
    try:
        return checkpoint.read(folder, name)
    except CheckpointError as exc:
        raise TrainError(str(exc)) from None


def _load_network(folder: Path, name: str | None = None) -> tuple[str, dict[str, Any], nn.Module]:
    """(stem, meta, network in eval mode on the CPU) of a stage checkpoint; torch's RNG is left untouched."""
    name, tensors, meta = _read(folder, name)
    try:
        config, stage = ModelConfig.from_dict(meta["config"]), meta["stage"]
        with torch.random.fork_rng(devices=[]):
            key, net = stages.build_network(stage, config)
        prefix = f"{key}."
        net.load_state_dict({k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)})
    except (KeyError, ConfigError, RuntimeError, ValueError) as exc:
        raise TrainError(f"{folder / name}: unusable checkpoint ({str(exc).splitlines()[0]})") from None
    return name, meta, net.eval()


def load_stage(
    stage_dir: Path, device: str | torch.device = "cpu", name: str | None = None
) -> tuple[ModelConfig, dict[str, nn.Module]]:
    """The config and network of a stage folder's checkpoint `name` (by default the latest), in eval mode on
    `device`: {"vae": VAE} for vae-a/vae-b, {"mapping": Mapping}, {"detector": ScratchDetector}."""
    _, meta, net = _load_network(Path(stage_dir), name)
    return ModelConfig.from_dict(meta["config"]), {stages.NETWORKS[meta["stage"]]: net.to(device)}


def write_grid(path: Path, columns: list[Tensor], gap: int = 2) -> None:
    """A PNG of (N, 1 or 3, H, W) columns in [0, 1]: sample n in row n, a white `gap` between cells."""
    n, _, h, w = columns[0].shape
    grid = np.full((n * (h + gap) - gap, len(columns) * (w + gap) - gap, 3), 255, np.uint8)
    for c, column in enumerate(columns):
        pixels = (column.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        pixels = pixels.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()
        for r in range(n):
            grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = pixels[r]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, encode_png(grid))


def _as_loaded(config: Any) -> Any:
    """A checkpoint's stored config as this code reads it: fields added since it was written take their
    defaults (the behaviour the checkpoint was trained with), so adding an option keeps old runs resumable."""
    try:
        return ModelConfig.from_dict(config).to_dict()
    except ConfigError:
        return config


def _rank_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


class Trainer:
    """One stage's training run, set up from `options` (resumed from the latest checkpoint if asked):
    `run()` trains up to `options.steps` and returns the summary. `train()` is the one-call form; the object
    gives tests and tools access to `stage.modules`."""

    def __init__(self, options: TrainOptions) -> None:
        self.options = options
        self.config = load_config(options.config)
        _check(options, self.config)
        self.folder = Path(options.out) / options.stage
        self.context = distributed.setup(options.device)
        self._setup()

    def _setup(self) -> None:
        o, device = self.options, self.context.device
        resumed = self._resume_point()
        torch.manual_seed(o.seed)
        np.random.seed(o.seed)
        try:
            data = _dataset(o, o.seed, jitter=True)
            held = _dataset(o, o.seed + VALIDATION_SEED, flips=False)
            old = None if o.real_old is None else FolderDataset(o.real_old, o.crop, seed=o.seed + 1)
            samples = [held[i] for i in range(min(VALIDATION_SAMPLES, len(held)))]
        except ValueError as exc:  # DataError, SourceError, PresetError: they name the folder or preset
            raise TrainError(str(exc)) from None
        self.vaes: dict[str, str] = {}  # mapping: the VAE checkpoints it trains between
        vaes = self._load_vaes(resumed[2] if resumed else {}) if o.stage == "mapping" else None
        weights = loss_weights(o)
        if resumed and resumed[2].get("weights", asdict(weights)) != asdict(weights):
            raise TrainError(f"{self.folder}: trained with other loss weights; resume with the same --loss-weight")
        self.stage = stages.build(o.stage, self.config, o.lr, device, weights, old is not None, vaes)
        self.validation = _to(default_collate(samples), device, self.stage.layout)
        self.streams = {"data": distributed.BatchStream(data, o.batch, o.seed, self.context, o.workers)}
        if old is not None:
            self.streams["real_old"] = distributed.BatchStream(old, o.batch, o.seed + 1, self.context, o.workers)
        self.step, self.seconds, self.ran = 0, 0.0, 0
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.losses: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.initialised: dict[str, float] = {}
        if resumed:
            self._restore(*resumed)
        else:
            self._initialise()
            self._seed_rank(0)
        self.stage.wrap(partial(distributed.wrap, context=self.context))

    def _initialise(self) -> None:
        """A fresh stage's data-driven initialisation, on crops of their own stream (read only if it asks)."""
        o = self.options

        def load() -> stages.Batch:
            try:
                data = _dataset(o, o.seed + INITIALISE_SEED, flips=False)
            except ValueError as exc:
                raise TrainError(str(exc)) from None
            samples = [data[i] for i in range(min(INITIALISE_SAMPLES, len(data)))]
            return _to(default_collate(samples), self.context.device, self.stage.layout)

        self.initialised = self.stage.initialise(load)

    def _resume_point(self) -> tuple[str, dict[str, Tensor], dict[str, Any]] | None:
        o, found = self.options, checkpoint.latest(self.folder)
        if not o.resume:
            if found:
                raise TrainError(f"{self.folder}: holds a training run already ({found}); resume it or use another out")
            return None
        if found is None:
            raise TrainError(f"{self.folder}: nothing to resume (no checkpoint)")
        name, tensors, meta = _read(self.folder)
        if meta.get("frozen"):
            raise TrainError(
                f"{self.folder / name}: a frozen stage (its network alone, kept by tools/freeze_stage.py at step "
                f"{meta['step']}); it cannot train on, only serve the later stages"
            )
        if meta.get("stage") != o.stage:
            raise TrainError(f"{self.folder / name}: a {meta.get('stage')} checkpoint, not {o.stage}")
        stored = _as_loaded(meta.get("config"))
        difference = stages.config_difference(o.stage, stored, self.config.to_dict(), stages.TRAINED_SECTIONS)
        if difference:
            raise TrainError(f"{self.folder}: trained with another config ({difference}); resume with the same config")
        if meta["step"] > o.steps:
            raise TrainError(f"{self.folder / name}: already at step {meta['step']}, beyond steps={o.steps}")
        return name, tensors, meta

    def _load_vaes(self, resumed: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
        """VAE A and B for the mapping stage: their folders' latest checkpoints, or on resume the very
        checkpoints this run started from; both must match this run's config (its `vae` section)."""
        o, nets = self.options, []
        for stage, given in (("vae-a", o.vae_a), ("vae-b", o.vae_b)):
            folder = Path(given) if given is not None else Path(o.out) / stage
            pinned = resumed.get("vaes", {}).get(stage)
            if pinned is None and checkpoint.latest(folder) is None:
                raise TrainError(
                    f"{folder}: no trained {stage} checkpoint; "
                    f"train {stage} first (restore train {stage} ...) or give --{stage} DIR"
                )
            name, meta, net = _load_network(folder, pinned)
            if meta["stage"] != stage:
                raise TrainError(f"{folder}: holds a {meta['stage']} checkpoint, not {stage}")
            difference = stages.config_difference(stage, meta["config"], self.config.to_dict())
            if difference:
                raise TrainError(f"{folder}: trained with another config than this run's ({difference})")
            self.vaes[stage] = name
            nets.append(net)
        return nets[0], nets[1]

    def _seed_rank(self, step: int) -> None:
        """Per-process RNG streams (latent noise differs between ranks; weights come from rank 0 anyway)."""
        seed = _rank_seed(self.options.seed, self.context.rank, step)
        torch.manual_seed(seed)
        np.random.seed(seed)

    def _restore(self, name: str, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        try:
            self.stage.load_state(tensors, meta["state"])
        except CheckpointError as exc:
            raise TrainError(f"{self.folder / name}: {exc}") from None
        for key, stream in self.streams.items():
            stream.load_state(meta["data"][key])
        self.step = meta["step"]
        self.history.extend(meta["history"])
        self.losses = self.history[-1]["losses"] if self.history else {}
        self.metrics = meta["validation"]
        if len(meta["rng"]) == self.context.world:
            checkpoint.set_rng_state(meta["rng"][self.context.rank], self.context.device)
        else:
            warnings.warn(f"{self.folder / name}: written by {len(meta['rng'])} processes; reseeding", stacklevel=2)
            self._seed_rank(self.step)
        if self.context.main:  # drop log lines of steps after the checkpoint (a crashed run's tail)
            log = self.folder / "log.jsonl"
            lines = log.read_text("utf-8").splitlines() if log.is_file() else []
            kept = [line for line in lines if _logged_step(line) <= self.step]
            atomic_write(log, "".join(f"{line}\n" for line in kept).encode())

    def run(self) -> dict[str, Any]:
        o, device, main = self.options, self.context.device, self.context.main
        self.folder.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=o.steps, initial=self.step, desc=o.stage, unit="step", disable=not (o.progress and main))
        # Append after a resume (at step >= 1); a fresh run replaces what a run that crashed before its first
        # checkpoint may have left.
        self.log = open(self.folder / "log.jsonl", "a" if self.step else "w", encoding="utf-8") if main else None
        if self.initialised and self.step == 0:
            self._log({"step": 0, "initialised": self.initialised})
        try:
            end = o.steps if o.until is None else min(o.until, o.steps)
            while self.step < end:
                start = time.perf_counter()
                lr = learning_rate(self.step, o)
                self.stage.set_lr(lr)
                layout = self.stage.layout
                batch = _to(next(self.streams["data"]), device, layout)
                old = _to(next(self.streams["real_old"]), device, layout) if "real_old" in self.streams else None
                self.losses = distributed.mean_over_ranks(self.stage.step(batch, old), self.context)
                self.step += 1
                seconds = time.perf_counter() - start
                self.seconds, self.ran = self.seconds + seconds, self.ran + 1
                self._log({"step": self.step, "losses": self.losses, "lr": lr, "seconds": round(seconds, 4)})
                bar.set_postfix({k: f"{v:.3g}" for k, v in self.losses.items()}, refresh=False)
                bar.update()
                if self.step == end or (o.validate_every and self.step % o.validate_every == 0):
                    self._validate()
                if self.step == end or (o.checkpoint_every and self.step % o.checkpoint_every == 0):
                    self._checkpoint()
        finally:
            bar.close()
            if self.log is not None:
                self.log.close()
        distributed.finish(self.context)  # every process returns once the final checkpoint is on disk
        return {
            "stage": o.stage,
            "step": self.step,
            "losses": self.losses,
            "validation": self.metrics,
            "checkpoint": str(self.folder / f"{checkpoint.stem(self.step)}.safetensors"),
            "seconds_per_step": self.seconds / max(1, self.ran),
        }

    def _log(self, record: dict[str, Any]) -> None:
        if "losses" in record:
            self.history.append(record)
        if self.log is not None:
            self.log.write(json.dumps(record) + "\n")

    def _validate(self) -> None:
        if not self.context.main:
            return
        self.metrics, columns = self.stage.evaluate(self.validation)
        sample = Path("samples") / f"step-{self.step:08d}.png"
        write_grid(self.folder / sample, columns)
        self._log({"step": self.step, "validation": self.metrics, "sample": str(sample), "columns": self.stage.columns})

    def _checkpoint(self) -> None:
        rng = distributed.gather(checkpoint.rng_state(self.context.device), self.context)
        if not self.context.main:
            return
        tensors, state = self.stage.state()
        meta = {
            "format": checkpoint.FORMAT,
            "step": self.step,
            "stage": self.options.stage,
            "config": self.config.to_dict(),
            "options": {k: _json_safe(v) for k, v in asdict(self.options).items()},
            "weights": asdict(self.stage.weights),
            "vaes": self.vaes,
            "state": state,
            "data": {key: stream.state() for key, stream in self.streams.items()},
            "rng": rng,
            "history": list(self.history),
            "validation": self.metrics,
        }
        self.log.flush()  # the log holds every step the checkpoint does
        checkpoint.save(self.folder, self.step, tensors, meta)


def _logged_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")  # a line cut short by a crash


def train(options: TrainOptions) -> dict[str, Any]:
    """Train one stage (see the module docstring); returns {stage, step, losses, validation (last metrics),
    checkpoint (the final one's path), seconds_per_step}."""
    return Trainer(options).run()
