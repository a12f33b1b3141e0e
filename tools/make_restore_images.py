"""Render the before/after pictures of a restorer (docs/model-card.md): the shipped weights by default.

    python tools/make_restore_images.py [--weights patina-small | FILE] [--out PICTURE]

The photo is scikit-image's `chelsea` (CC0), the one sample photo held out of the training set, at its full
451 x 300, damaged by the default `old-photo` preset at seeds 0..3 (all of them, none picked) and restored with
`Restorer.restore`, as `restore run` does. Rows: damaged input, restoration, detected damage mask, the clean photo.
Each column is labelled with the input's and the restoration's PSNR against the clean photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import ImageDraw
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from degrade import Degrader
from restore.pipeline import Restorer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_docs_images import grid  # noqa: E402

SEEDS = range(4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="patina-small", help="shipped name or restore export file")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "restore-before-after.jpg")
    args = parser.parse_args()
    torch.set_num_threads(2)
    restorer = Restorer.load(args.weights, device="cpu")
    photo = data.chelsea()
    degrader = Degrader("old-photo")
    columns, captions = [], []
    for seed in SEEDS:
        sample = degrader(photo, np.random.default_rng(seed))
        restored = restorer.restore(sample.degraded)
        mask = np.repeat((restored.mask * 255).astype(np.uint8)[..., None], 3, axis=2)
        columns.append([sample.degraded, restored.image, mask, sample.clean])
        before = peak_signal_noise_ratio(sample.clean, sample.degraded)
        after = peak_signal_noise_ratio(sample.clean, restored.image)
        captions.append(f"seed {seed}: {before:.1f} -> {after:.1f} dB")
        print(captions[-1])
    rows = [list(row) for row in zip(*columns, strict=True)]
    picture = grid(rows, ["damaged (input)", "restored", "detected damage", "clean"])
    draw = ImageDraw.Draw(picture)
    width = photo.shape[1] + 4
    for k, caption in enumerate(captions):
        draw.text((k * width + 150, 3), caption, fill="black")
    picture.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
