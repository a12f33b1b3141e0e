"""Pick the detector's probability threshold on validation renders, never on the evaluation suite.

    degrade-gen --src data/photos --out data/val-scratch --preset scratch-detect --size 512 --seed 99
    degrade-gen --src data/photos --out data/val-old --preset old-photo --size 512 --seed 98
    python tools/detector_threshold.py data/val-scratch data/val-old [--weights FILE]

A detector trained with focal loss is under-confident by design (the loss stops pushing once a pixel is
classified), so its probabilities are not calibrated and 0.5 is not a natural cut. This prints pooled
precision, recall and F1 per threshold on fresh damage (other seeds than training) of the training photos,
for the raw and the dilated mask; the threshold with the best F1 of the dilated mask on the first folder, up
to 0.8, becomes `restore.pipeline.THRESHOLD`. The scan goes on to 0.95 to show what lies above: for the bundled
detector the dilated F1 moves by 0.005 there while the recall the inpainting needs falls by 0.05.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from restore.pipeline import Restorer, dilate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # not an installed package
from model_card import confusion, detection_scores  # noqa: E402  (the card's metrics, so the two agree)

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def evaluate(restorer: Restorer, folder: Path) -> dict[tuple[str, float], np.ndarray]:
    """Pooled [TP, FP, FN] per (raw | dilated, threshold) over a degrade-gen folder."""
    counts = {(kind, t): np.zeros(3, dtype=np.int64) for kind in ("raw", "dilated") for t in THRESHOLDS}
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        files = json.loads(line)["files"]
        degraded = np.asarray(Image.open(folder / files["degraded"]).convert("RGB"))
        truth = np.asarray(Image.open(folder / files["mask"])) > 0
        probability = restorer.detect(degraded)
        for t in THRESHOLDS:
            raw = probability >= t
            counts["raw", t] += confusion(truth, raw)
            counts["dilated", t] += confusion(truth, dilate(raw))
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
            found = (detection_scores(counts[kind, t]) for kind in ("raw", "dilated"))
            cells = (f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f}" for d in found)
            print(f"  {t:.2f}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
