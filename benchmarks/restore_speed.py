"""Size and CPU speed of the restoration model: parameters, MACs, seconds per training step of each stage,
and inference time and peak memory on whole photos.

    python benchmarks/restore_speed.py            # tiny, small, paper; 128² and 256² crops; 0.25, 1, 2 MP
                                                  # (about 10 minutes on 2 cores)
    python benchmarks/restore_speed.py --quick    # tiny and small, 128² crops, 0.25 and 1 MP photos

* Networks: parameters, and multiply-accumulates of one forward pass of one image, counted by torch's
  FlopCounterMode (MACs = FLOPs / 2: convolutions and the attention's matrix products). The mapping runs
  in training mode with the partial nonlocal block on and a synthetic scratch mask, so every latent
  position attends (at inference only hole positions do).
* Training: seconds per step of each stage through `restore.train.train` itself, on a degrade-gen pairs
  folder of the crop size (old-photo preset, no real-old folder: VAE A without its latent
  discriminator), one process with torch's default threads, no data workers. Each figure is the mean of
  the per-step times the run logs (loading the batch, forward, backward and the optimiser steps of the
  stage's generator and discriminator) over K steps after a first, warm-up step; the mapping loads the
  VAEs trained just before it.
* Inference: one photo (4:3) through VAE A's encoder, the mapping with the nonlocal block on (a synthetic
  scratch mask of thin random lines) and VAE B's decoder, in eval mode under `torch.inference_mode`,
  random weights. Each size runs in fresh subprocesses (3, --quick 1) that report their own peak resident
  memory (VmHWM, which includes torch itself and the weights; "before" is the resident memory just before
  the photo); the table gives the best time and the range of peaks.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from memory import peak_mib, resident_mib
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from degrade.dataset import Settings, generate
from degrade.presets import load_preset
from degrade.sources import open_source
from restore.config import ModelConfig, model_config
from restore.nets.detector import ScratchDetector
from restore.nets.discriminators import LatentDiscriminator, MultiScalePatchGAN
from restore.nets.mapping import Mapping
from restore.nets.vae import DOWNSCALE, VAE

STAGES = ("vae-a", "vae-b", "mapping", "detector")
# 4:3 photos with sides multiples of the VAE's downscale: 0.25, 1 and 2 megapixels.
PHOTOS = {"0.25 MP": (576, 432), "1 MP": (1152, 864), "2 MP": (1632, 1224)}


def scratch_mask(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A synthetic scratch mask (1, 1, H, W), 1 = hole: random top-to-bottom scratches 3 px wide, one per
    96 px of width (so about the same share of the photo at every size)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(max(1, width // 96)):
        x0, x1 = rng.integers(0, width, 2)
        cv2.line(mask, (int(x0), 0), (int(x1), height - 1), 1, thickness=3)
    return torch.from_numpy(mask).float()[None, None]


def macs(net: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (FLOPs / 2 as torch's counter reports them)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(*inputs)
    return counter.get_total_flops() // 2


def networks(config: ModelConfig) -> dict[str, tuple[nn.Module, Callable[[int], tuple[torch.Tensor, ...]]]]:
    """Each network of `config` with a function giving its inputs for one image of size² pixels."""
    latent = config.vae.latent

    def image(size: int, channels: int = 3) -> tuple[torch.Tensor, ...]:
        return (torch.randn(1, channels, size, size),)

    def code(size: int) -> tuple[torch.Tensor, ...]:
        return (torch.randn(1, latent, size // DOWNSCALE, size // DOWNSCALE),)

    return {
        "VAE (encoder + decoder)": (VAE(config.vae), image),
        "mapping (nonlocal block, all queries)": (Mapping(config.mapping), lambda s: (*code(s), scratch_mask(s, s))),
        "scratch detector": (ScratchDetector(config.detector), lambda s: image(s, 1)),
        "image discriminator (multi-scale)": (MultiScalePatchGAN(config.discriminator), image),
        "latent discriminator": (LatentDiscriminator(latent, config.discriminator.latent_base), code),
    }


def networks_table(presets: list[str], sizes: list[int]) -> list[str]:
    lines = [
        "| preset | network | parameters | " + " | ".join(f"GMACs at {s}²" for s in sizes) + " |",
        "|---|---|---:|" + "---:|" * len(sizes),
    ]
    for name in presets:
        config = model_config(name)
        for label, (net, make) in networks(config).items():
            net.train()
            params = sum(p.numel() for p in net.parameters())
            cells = [f"{macs(net, *make(s)) / 1e9:.3f}" for s in sizes]
            lines.append(f"| {name} | {label} | {params:,} | " + " | ".join(cells) + " |")
    return lines


def make_pairs(folder: Path, crop: int, count: int) -> Path:
    """A degrade-gen pairs folder of `count` old-photo samples of `crop`² from the bundled sample photos."""
    source = open_source("sample")
    repeats = -(-count // len(source.items))
    settings = Settings(json.dumps(load_preset("old-photo")), repeats=repeats, size=crop, crop=crop)
    generate(source, folder, settings, jobs=1, progress=False)
    return folder


def training_table(presets: list[str], sizes: list[int], batch: int, steps: int, root: Path) -> list[str]:
    from restore.train import TrainOptions, train

    lines = [
        f"| preset | crop | batch | {' | '.join(f'{s} s/step' for s in STAGES)} |",
        "|---|---|---:|" + "---:|" * len(STAGES),
    ]
    for size in sizes:
        pairs = make_pairs(root / f"pairs{size}", size, max(8, batch))
        for name in presets:
            run = root / f"{name}-{size}"
            seconds = []
            for stage in STAGES:  # in order: the mapping loads the VAEs trained just before
                options = TrainOptions(
                    stage=stage,
                    out=run,
                    config=name,
                    pairs=pairs,
                    steps=1 + steps,
                    batch=batch,
                    crop=size,
                    checkpoint_every=0,
                    validate_every=0,
                    progress=False,
                )
                train(options)
                log = [json.loads(line) for line in (run / stage / "log.jsonl").read_text().splitlines()]
                timed = [record["seconds"] for record in log if "seconds" in record and record["step"] > 1]
                seconds.append(sum(timed) / len(timed))
            lines.append(f"| {name} | {size}² | {batch} | " + " | ".join(f"{s:.3f}" for s in seconds) + " |")
    return lines


def restore_photo(vae_a: VAE, mapping: Mapping, vae_b: VAE, photo: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Photo (1, 3, H, W) in [-1, 1] and scratch mask (1, 1, H, W) -> restored photo (1, 3, H, W)."""
    return vae_b.decode(mapping(vae_a.encode(photo), mask))


def inference_child(preset: str, width: int, height: int) -> None:
    """Runs in a fresh process (see `inference_table`); prints one JSON line."""
    torch.manual_seed(0)
    config = model_config(preset)
    vae_a, mapping, vae_b = VAE(config.vae).eval(), Mapping(config.mapping).eval(), VAE(config.vae).eval()
    photo = torch.rand(1, 3, height, width) * 2 - 1
    mask = scratch_mask(height, width)
    with torch.inference_mode():
        restore_photo(vae_a, mapping, vae_b, photo[..., :64, :64], mask[..., :64, :64])  # warm-up
        before = resident_mib()
        start = time.perf_counter()
        restore_photo(vae_a, mapping, vae_b, photo, mask)
        seconds = time.perf_counter() - start
    holes = nn.functional.adaptive_max_pool2d(mask, (height // DOWNSCALE, width // DOWNSCALE)).mean().item()
    result = {"seconds": seconds, "peak": peak_mib(), "before": before, "holes": holes}
    print(json.dumps(result))


def inference_table(presets: list[str], photos: list[str], repeats: int) -> list[str]:
    """Best seconds and the range of peak memory over `repeats` fresh processes per photo: the peak varies
    between identical runs (the C allocator holds on to freed attention chunks to different degrees from
    run to run), most with many small chunks (tiny)."""
    lines = [
        f"| preset | photo | latent holes | seconds (best of {repeats}) | peak RSS MiB | RSS before MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in presets:
        for label in photos:
            width, height = PHOTOS[label]
            command = [sys.executable, __file__, "--inference-child", name, str(width), str(height)]
            runs = [
                json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
                for _ in range(repeats)
            ]
            low, high = min(r["peak"] for r in runs), max(r["peak"] for r in runs)
            peak = f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}–{high:.0f}"
            lines.append(
                f"| {name} | {label} ({width}×{height}) | {100 * runs[0]['holes']:.1f}% "
                f"| {min(r['seconds'] for r in runs):.2f} | {peak} | {runs[0]['before']:.0f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny and small presets, 128² crops, smaller photos")
    parser.add_argument("--batch", type=int, default=1, help="training batch size (default 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps K (default 3, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="processes per inference size (default 3, --quick 1)")
    parser.add_argument("--only", choices=("networks", "training", "inference"), action="append")
    parser.add_argument("--inference-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inference_child:
        preset, width, height = args.inference_child
        inference_child(preset, int(width), int(height))
        return
    sections = args.only or ("networks", "training", "inference")
    presets = ["tiny", "small"] if args.quick else ["tiny", "small", "paper"]
    sizes = [128] if args.quick else [128, 256]
    photos = ["0.25 MP", "1 MP"] if args.quick else list(PHOTOS)
    steps = args.steps or (2 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if "networks" in sections:
        print("## Networks: parameters and MACs per image (one forward pass, training mode)\n")
        print("\n".join(networks_table(presets, [128, 256])))
    if "training" in sections:
        print(f"\n## Training: CPU seconds per step (mean of {steps} steps after the first)\n")
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join(training_table(presets, sizes, args.batch, steps, Path(tmp))))
    if "inference" in sections:
        print("\n## Inference: VAE A encoder → mapping (nonlocal block on) → VAE B decoder, one photo\n")
        print("\n".join(inference_table(presets, photos, repeats)))


if __name__ == "__main__":
    main()
