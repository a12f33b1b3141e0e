"""Memory layout of the restorer's tensors on the CPU: contiguous (NCHW) against channels-last (NHWC).

    python benchmarks/restore_layout.py [--weights FILE] [--threads 2] [--repeats 3]

oneDNN's convolutions work in a blocked channels-last layout; with NCHW tensors every convolution reorders
its input and output, which on the restorer's wide, shallow convolutions costs about a sixth of the time.
`Restorer` therefore runs channels-last on the CPU. This prints, for a 1 and a 2 megapixel photo (the model
card's timing sizes; 2 MP runs the VAEs in tiles), the median seconds of `Restorer.restore` (scratches
"auto", after a warm-up) and the peak resident memory of a fresh process per layout, their ratios, and the
largest difference between the two restorations in grey levels.

Without `--weights` the networks are the `small` config's, randomly initialised: the work per pixel is the
trained model's, except the detector's mask, which a random detector draws at random; pass the weights of
`restore export` to time a trained model's mask.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
from skimage import data

from restore.config import model_config
from restore.export import build_networks, load_model
from restore.pipeline import Restorer

SIZES = {"1 MP": (1155, 866), "2 MP": (1633, 1225)}  # as benchmarks/model_card.py's timing
LAYOUTS = {"contiguous": False, "channels-last": True}


def child(weights: str | None, width: int, height: int, channels_last: bool, repeats: int, out: str) -> None:
    """In a fresh process: time one layout on one size; prints a JSON line, saves the restoration to `out`."""
    torch.manual_seed(0)
    config, nets = load_model(weights) if weights else (model_config("small"), build_networks(model_config("small")))
    restorer = Restorer(config, nets, torch.device("cpu"), channels_last=channels_last)
    photo = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    restored = restorer.restore(photo)  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        restorer.restore(photo)
        seconds.append(time.perf_counter() - started)
    np.save(out, restored.image)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"seconds": statistics.median(seconds), "peak": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a `restore export` file (default: random `small` weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        width, height, channels_last = map(int, args.child[1:4])
        child(args.child[0] or None, width, height, bool(channels_last), args.repeats, args.child[4])
        return
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
        ratio = rows["contiguous"]["seconds"] / rows["channels-last"]["seconds"]
        memory = rows["channels-last"]["peak"] / rows["contiguous"]["peak"]
        difference = np.abs(images[0] - images[1]).max()
        print(f"| {label} | speed-up {ratio:.2f}x, memory ratio {memory:.2f}, largest difference {difference} | | |")


if __name__ == "__main__":
    main()
