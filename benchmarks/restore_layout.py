"""Memory layout of the restorer's tensors on the CPU: contiguous (NCHW) against channels-last (NHWC).

    python benchmarks/restore_layout.py [--weights FILE] [--threads 2] [--repeats 3]
    python benchmarks/restore_layout.py --train [--threads 1] [--repeats 5]

oneDNN's convolutions work in a blocked channels-last layout; with NCHW tensors every convolution reorders
its input and output. Which layout is faster depends on the network, so this prints two tables:

1. each network alone on a 1 MP photo, in both layouts (one process, the layouts alternating, median seconds
   after a warm-up round): the evidence for `restore.pipeline.CHANNELS_LAST`, the networks `Restorer` runs
   channels-last on the CPU;
2. `Restorer.restore` (scratches "auto") as shipped against every network contiguous, for a 1 and a 2
   megapixel photo (the model card's timing sizes; 2 MP runs the VAEs in tiles): median seconds, the peak
   resident memory of a fresh process per layout, their ratios, and the largest difference between the
   two restorations in grey levels.

`--train` prints instead the seconds of one training step of each stage (`small` config, the batches and
crops of `tools/train_bundled.py`, random pixels) in both layouts, alternating, median of the repeats after
a warm-up step: the evidence for `restore.stages.Stage.channels_last_on_cpu`.

Without `--weights` the networks are the `small` config's, randomly initialised: the work per pixel is the
trained model's, except the detector's mask, which a random detector draws at random; pass the weights of
`restore export` to time a trained model's mask.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import cv2
import numpy as np
import torch
from memory import peak_mib
from skimage import data
from torch import nn

from restore import stages
from restore.config import ModelConfig, model_config
from restore.export import build_networks, load_model
from restore.nets.vae import VAE
from restore.pipeline import THRESHOLD, Restorer

SIZES = {"1 MP": (1155, 866), "2 MP": (1633, 1225)}  # as benchmarks/model_card.py's timing
LAYOUTS = {"contiguous": False, "as shipped": True}
K = TypeVar("K")


def model(weights: str | None) -> tuple[ModelConfig, dict[str, nn.Module]]:
    """The model in `weights`, or the `small` config's networks freshly initialised."""
    return load_model(weights) if weights else (model_config("small"), build_networks(model_config("small")))


def alternating_medians(
    calls: dict[K, Callable[[], object]], repeats: int, before: Callable[[K], object] = lambda key: None
) -> dict[K, float]:
    """Median seconds of each call over `repeats` rounds after a warm-up round, `before(key)` (untimed) ahead
    of each; the calls alternate within each round, so that drift in the machine's speed falls on all alike."""
    seconds: dict[K, list[float]] = {key: [] for key in calls}
    for round_ in range(repeats + 1):
        for key, call in calls.items():
            before(key)
            started = time.perf_counter()
            call()
            if round_:
                seconds[key].append(time.perf_counter() - started)
    return {key: statistics.median(timed) for key, timed in seconds.items()}


def networks_table(weights: str | None, repeats: int) -> list[str]:
    """Seconds of each network on a 1 MP photo in both layouts (the mapping with the detected mask)."""
    restorer = Restorer(*model(weights), torch.device("cpu"), channels_last=False)
    photo = cv2.resize(data.astronaut(), SIZES["1 MP"], interpolation=cv2.INTER_AREA)
    nets = restorer.nets
    layouts = (torch.contiguous_format, torch.channels_last)
    lines = ["| network | contiguous s | channels-last s | speed-up |", "|---|---:|---:|---:|"]
    with torch.inference_mode():
        x = restorer._prepare(photo)
        mask = (restorer._probability(x) >= THRESHOLD).float()
        hole = mask if mask.any() else None
        latent = nets["vae_a"].encode(x)
        calls = {
            "detector": ("detector", x, restorer._probability),
            "vae_a (encoder)": ("vae_a", x, nets["vae_a"].encode),
            "mapping": ("mapping", latent, lambda z: nets["mapping"](z, hole)),
            "vae_b (decoder)": ("vae_b", latent, nets["vae_b"].decode),
        }
        for label, (name, given, call) in calls.items():
            arranged = {layout: partial(call, given.contiguous(memory_format=layout)) for layout in layouts}
            net = nets[name]
            a, b = alternating_medians(arranged, repeats, lambda layout, net=net: net.to(memory_format=layout)).values()
            net.to(memory_format=torch.contiguous_format)
            lines.append(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    return lines


def training_step(stage: str, images: dict[str, torch.Tensor], channels_last: bool) -> Callable[[], object]:
    """One training step of a fresh `small` stage in the given layout, on `images` arranged to match."""
    torch.manual_seed(0)
    config = model_config("small")
    vaes = (VAE(config.vae), VAE(config.vae)) if stage == "mapping" else None
    trainer = stages.build(stage, config, 2e-4, torch.device("cpu"), vaes=vaes, channels_last=channels_last)
    return partial(trainer.step, {key: value.contiguous(memory_format=trainer.layout) for key, value in images.items()})


def training_table(repeats: int) -> list[str]:
    """Seconds per training step of each stage, contiguous against channels-last."""
    shapes = {"vae-a": (8, 128), "vae-b": (8, 128), "mapping": (4, 192), "detector": (4, 256)}
    lines = ["| stage | batch x crop | contiguous s/step | channels-last s/step | speed-up |"]
    lines.append("|---|---|---:|---:|---:|")
    for stage, (batch, crop) in shapes.items():
        generator = torch.Generator().manual_seed(0)
        images = {key: torch.rand(batch, 3, crop, crop, generator=generator) * 2 - 1 for key in ("degraded", "clean")}
        images["mask"] = (torch.rand(batch, 1, crop, crop, generator=generator) > 0.98).float()
        steps = {flag: training_step(stage, images, flag) for flag in (False, True)}
        a, b = alternating_medians(steps, repeats).values()
        lines.append(f"| {stage} | {batch} x {crop}² | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    return lines


def child(weights: str | None, width: int, height: int, channels_last: bool, repeats: int, out: str) -> None:
    """In a fresh process: time one layout on one size; prints a JSON line, saves the restoration to `out`."""
    torch.manual_seed(0)
    restorer = Restorer(*model(weights), torch.device("cpu"), channels_last=channels_last)
    photo = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    restored = restorer.restore(photo)  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        restorer.restore(photo)
        seconds.append(time.perf_counter() - started)
    np.save(out, restored.image)
    print(json.dumps({"seconds": statistics.median(seconds), "peak": peak_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a `restore export` file (default: random `small` weights)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant after a warm-up (default 3)")
    parser.add_argument("--train", action="store_true", help="time training steps instead of restorations")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        torch.set_num_threads(args.threads)
        print("\n".join(training_table(args.repeats)))
        return
    if args.child:
        width, height, channels_last = map(int, args.child[1:4])
        child(args.child[0] or None, width, height, bool(channels_last), args.repeats, args.child[4])
        return
    torch.set_num_threads(args.threads)
    print("\n".join(networks_table(args.weights, args.repeats)) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    print(f"| photo | layout | seconds (median of {args.repeats}) | peak RSS MiB |")
    print("|---|---|---:|---:|")
    for label, (width, height) in SIZES.items():
        rows, images = {}, []
        for layout, flag in LAYOUTS.items():
            with tempfile.TemporaryDirectory() as folder:
                out = f"{folder}/restored.npy"
                command = [sys.executable, __file__, "--repeats", str(args.repeats), "--child", args.weights or ""]
                command += [str(width), str(height), str(int(flag)), out]
                done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
                images.append(np.load(out).astype(int))
            rows[layout] = json.loads(done.stdout.splitlines()[-1])
            print(f"| {label} | {layout} | {rows[layout]['seconds']:.2f} | {rows[layout]['peak']:.0f} |")
        ratio = rows["contiguous"]["seconds"] / rows["as shipped"]["seconds"]
        memory = rows["as shipped"]["peak"] / rows["contiguous"]["peak"]
        difference = np.abs(images[0] - images[1]).max()
        print(f"| {label} | speed-up {ratio:.2f}x, memory ratio {memory:.2f}, largest difference {difference} | | |")


if __name__ == "__main__":
    main()
