"""Pick the detector's probability threshold on validation renders, never on the evaluation suite.

    degrade-gen --src data/photos --out data/val-scratch --preset scratch-detect --size 512 --seed 99
    degrade-gen --src data/photos --out data/val-old --preset old-photo --size 512 --seed 98
    python tools/detector_threshold.py data/val-scratch data/val-old [--weights FILE]

A detector trained with focal loss is under-confident by design (the loss stops pushing once a pixel is
classified), so its probabilities are not calibrated and 0.5 is not a natural cut. This prints pooled
precision, recall and F1 per threshold on fresh damage (other seeds than training) of the training photos,
for the raw and the dilated mask; the threshold with the best F1 of the dilated mask on the first folder
becomes `restore.pipeline.THRESHOLD`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from restore.pipeline import Restorer, dilate

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return precision, recall, 2 * tp / max(2 * tp + fp + fn, 1)


def evaluate(restorer: Restorer, folder: Path) -> dict[tuple[str, float], np.ndarray]:
    counts = {(kind, t): np.zeros(3, dtype=np.int64) for kind in ("raw", "dilated") for t in THRESHOLDS}
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        files = json.loads(line)["files"]
        degraded = np.asarray(Image.open(folder / files["degraded"]).convert("RGB"))
        truth = np.asarray(Image.open(folder / files["mask"])) > 0
        probability = restorer.detect(degraded)
        for t in THRESHOLDS:
            raw = probability >= t
            for kind, predicted in (("raw", raw), ("dilated", dilate(raw))):
                counts[kind, t] += [(truth & predicted).sum(), (~truth & predicted).sum(), (truth & ~predicted).sum()]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="degrade-gen output folders (validation renders)")
    parser.add_argument("--weights", default="patina-small")
    args = parser.parse_args()
    restorer = Restorer.load(args.weights, device="cpu")
    for folder in args.folders:
        counts = evaluate(restorer, folder)
        print(f"{folder}: threshold, then precision / recall / F1 of the raw and the dilated mask")
        for t in THRESHOLDS:
            raw, dilated = (scores(*counts[kind, t]) for kind in ("raw", "dilated"))
            print(f"  {t:.2f}  " + "  ".join(f"{p:.3f} / {r:.3f} / {f:.3f}" for p, r, f in (raw, dilated)))


if __name__ == "__main__":
    main()
