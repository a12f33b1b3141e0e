"""Throughput of pair generation beside the pure I/O floor and the peers, on one core and two.

    python benchmarks/throughput.py            # full run, about 10 minutes on 2 cores
    python benchmarks/throughput.py --quick    # smaller counts, for a smoke check
    python benchmarks/throughput.py --only e2e --e2e-out /dev/shm   # parallel scaling without the disk
    python benchmarks/throughput.py --only dask    # the Dask backend's overhead beside joblib (cluster extra)

Inputs are JPEG files cut from the sample photos at 256x256 and at VOC size (500x375).
Per-pair timings run in this process with OpenCV pinned to one thread, the methods taking
turns on every image:

* I/O floor: decode the source, encode our four outputs (clean, degraded, mask, labels) with our
  own PNG encoder (`degrade.writer.encode_png`), write them; nothing else;
* ours: the whole `degrade-gen` sample (decode, checksum, plan, render, encode, checksums, atomic writes);
* official / albumentations: decode, the peer's `bopbtl`-equivalent degradation (see peers.py), and the
  four outputs saved the plain way (OpenCV's default PNG settings), as a user of those libraries would.

The peers only blur, add noise, resize and compress, so "bopbtl" in the peer tables means that
unstructured part of our `bopbtl` preset (its texture scratches and holes removed): equal work.

Then the degradation alone (no I/O) for the three, `generate()` end to end with --jobs 1 and 2
(pairs/s, speed-up), the same with 2 joblib processes beside a 2-worker Dask `LocalCluster`
(`--only dask`, needs the cluster extra), the peak memory of a single-worker run over 100 and 2,000 images, and what
structured damage costs beside the unstructured part of each preset (`--only structured`).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import albumentations_pipeline, official  # noqa: E402

from degrade import Degrader  # noqa: E402
from degrade.allocator import keep_freed_memory  # noqa: E402
from degrade.dataset import JoblibExecutor, Settings, generate, render_sample  # noqa: E402
from degrade.ops import get_op  # noqa: E402
from degrade.pipeline import is_gray, run_steps  # noqa: E402
from degrade.presets import load_preset  # noqa: E402
from degrade.seeding import stable_hash  # noqa: E402
from degrade.sources import SourceItem, load_image, open_source  # noqa: E402
from degrade.writer import encode_png, write_sample  # noqa: E402

SIZES = {"256²": (256, 256), "VOC 500×375": (500, 375)}


def _structured_entry(entry: dict) -> bool:
    ops = [c["op"] for c in entry["one_of"].values()] if "one_of" in entry else [entry["op"]]
    return all(get_op(op).structured for op in ops)


def unstructured_part(name: str) -> dict:
    """A built-in preset with every structured-damage entry removed (what the peers' recipes do)."""
    preset = load_preset(name)
    for stage in preset["stages"].values():
        stage["ops"] = {label: e for label, e in stage["ops"].items() if not _structured_entry(e)}
    return preset


def make_inputs(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """`n` JPEGs of `size` (w, h) cut at random from the sample photos."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [load_image(item.path)[0] for item in open_source("sample").items]
    w, h = size
    paths = []
    for i in range(n):
        photo = photos[i % len(photos)]
        scale = max(w / photo.shape[1], h / photo.shape[0]) * rng.uniform(1.0, 1.6)
        big = cv2.resize(
            photo,
            (max(w, round(photo.shape[1] * scale)), max(h, round(photo.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        x, y = rng.integers(0, big.shape[1] - w + 1), rng.integers(0, big.shape[0] - h + 1)
        path = folder / f"img{i:05d}.jpg"
        Image.fromarray(big[y : y + h, x : x + w]).save(path, quality=92)
        paths.append(path)
    return paths


def write_outputs(out: Path, name: str, clean: np.ndarray, degraded: np.ndarray) -> None:
    """How a peer's user saves a pair: encode each of the four images with OpenCV's defaults and write it."""
    zeros = np.zeros(clean.shape[:2], np.uint8)
    for kind, img in (("clean", clean), ("degraded", degraded), ("mask", zeros), ("labels", zeros)):
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
        (out / kind / f"{name}.png").write_bytes(cv2.imencode(".png", bgr)[1].tobytes())


def per_pair(
    methods: dict[str, Callable[[Path, str], object]], paths: list[Path], prefix: str, rounds: int = 3
) -> dict[str, float]:
    """Seconds per pair for each method: methods take turns on every image (so disk write-back and
    cache state hit them alike), and each keeps its best of `rounds` passes."""
    best = dict.fromkeys(methods, float("inf"))
    for r in range(rounds):
        spent = dict.fromkeys(methods, 0.0)
        for i, path in enumerate(paths):
            for name, fn in methods.items():
                start = time.perf_counter()
                fn(path, f"{prefix}p{r}-{i}")  # fresh file names each pass, as a generator creates new files
                spent[name] += time.perf_counter() - start
        best = {name: min(best[name], spent[name] / len(paths)) for name in methods}
    return best


def single_core_table(paths_by_size: dict[str, list[Path]], out: Path) -> list[str]:
    cv2.setNumThreads(1)
    settings = {
        "bopbtl": Settings(json.dumps(unstructured_part("bopbtl"))),
        "old-photo": Settings(json.dumps(load_preset("old-photo"))),
    }
    alb = albumentations_pipeline()
    random.seed(0)
    np.random.seed(0)
    # The floor encodes the very images our generator outputs (noisy images cost more to encode than clean ones).
    outputs = {
        (preset, path): render_sample(SourceItem(path.stem, path, path.name), 0, settings[preset])[1]
        for preset in settings
        for paths in paths_by_size.values()
        for path in paths
    }

    def folder(method: str) -> Path:
        """Each method writes into its own fresh folder: no method overwrites another's files."""
        target = out / method.replace(" ", "_").replace("/", "_")
        for kind in ("clean", "degraded", "mask", "labels"):
            (target / kind).mkdir(parents=True, exist_ok=True)
        return target

    def floor(preset: str) -> Callable[[Path, str], None]:
        target = folder(f"floor-{preset}")

        def run(path: Path, name: str) -> None:
            np.asarray(Image.open(path).convert("RGB"))
            sample = outputs[(preset, path)]
            for kind in ("clean", "degraded", "mask", "labels"):  # our own encoder: a floor no writer can beat
                (target / kind / f"{name}.png").write_bytes(encode_png(getattr(sample, kind)))

        return run

    def ours(preset: str) -> Callable[[Path, str], None]:
        target = folder(f"ours-{preset}")

        def run(path: Path, name: str) -> None:
            rendered = render_sample(SourceItem(path.stem, path, path.name), 0, settings[preset])[1]
            write_sample(target, name, rendered)

        return run

    def peer(label: str, degrade: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, str], None]:
        target = folder(label)

        def run(path: Path, name: str) -> None:
            img = np.asarray(Image.open(path).convert("RGB"))
            write_outputs(target, name, img, degrade(img))

        return run

    methods = {
        "I/O floor, bopbtl outputs": (floor("bopbtl"), "I/O floor, bopbtl outputs"),
        "ours, bopbtl": (ours("bopbtl"), "I/O floor, bopbtl outputs"),
        "official release (numpy/PIL), bopbtl": (peer("official", official), "I/O floor, bopbtl outputs"),
        "albumentations, bopbtl": (
            peer("albumentations", lambda img: alb(image=img)["image"]),
            "I/O floor, bopbtl outputs",
        ),
        "I/O floor, old-photo outputs": (floor("old-photo"), "I/O floor, old-photo outputs"),
        "ours, old-photo": (ours("old-photo"), "I/O floor, old-photo outputs"),
    }
    by_size = {
        s: per_pair({m: fn for m, (fn, _) in methods.items()}, paths, f"{paths[0].parent.name}-")
        for s, paths in paths_by_size.items()
    }
    times = {m: {s: by_size[s][m] for s in paths_by_size} for m in methods}
    lines = [
        "| method | " + " | ".join(f"{s} ms/pair | × floor" for s in paths_by_size) + " |",
        "|---|" + "---:|---:|" * len(paths_by_size),
    ]
    for method, (_, floor_name) in methods.items():
        cells = [f"{times[method][s] * 1e3:.2f} | {times[method][s] / times[floor_name][s]:.2f}" for s in paths_by_size]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    for s in paths_by_size:
        ours_t = times["ours, bopbtl"][s]
        vs_official = times["official release (numpy/PIL), bopbtl"][s] / ours_t
        vs_albumentations = times["albumentations, bopbtl"][s] / ours_t
        lines.append(
            f"- {s}: ours (bopbtl) runs at {vs_official:.2f}× the speed of the official release "
            f"and {vs_albumentations:.2f}× that of albumentations, one core."
        )
    return lines


def degradation_table(paths_by_size: dict[str, list[Path]], rounds: int = 5) -> list[str]:
    """Degradation alone (decoded image in, degraded image out), the three methods taking turns per image."""
    cv2.setNumThreads(1)
    ours = Degrader(unstructured_part("bopbtl"))
    alb = albumentations_pipeline()
    images = {p: load_image(p)[0] for paths in paths_by_size.values() for p in paths}
    methods: dict[str, Callable[[Path, str], object]] = {
        "ours": lambda path, name: ours(images[path], np.random.default_rng(stable_hash(path.name))),
        "official release": lambda path, name: official(images[path]),
        "albumentations": lambda path, name: alb(image=images[path]),
    }
    best = {size: per_pair(methods, paths, "", rounds) for size, paths in paths_by_size.items()}
    lines = [
        "| bopbtl recipe | " + " | ".join(f"{s} ms/image" for s in paths_by_size) + " |",
        "|---|" + "---:|" * len(paths_by_size),
    ]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{best[s][m] * 1e3:.2f}" for s in paths_by_size) + " |")
    return lines


def end_to_end_table(folders: dict[str, Path], root: Path) -> list[str]:
    """Steady-state pairs/s of `generate()` (median of 3); a short warm-up run first starts the worker processes."""
    lines = [
        "| preset | size | pairs | --jobs 1 pairs/s | --jobs 2 pairs/s | speed-up |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for preset in ("bopbtl", "old-photo"):
        settings = Settings(json.dumps(load_preset(preset)))
        for size, folder in folders.items():
            source = open_source(str(folder))
            for jobs in (1, 2):
                generate(
                    source,
                    root / f"warm-{preset}-{jobs}-{folder.name}",
                    settings,
                    jobs=jobs,
                    limit=8 * jobs,
                    progress=False,
                )
            runs: dict[int, list[float]] = {1: [], 2: []}
            for attempt in range(3):  # alternate 1 and 2 jobs and keep the median: this machine drifts
                for jobs in (1, 2):
                    os.sync()  # start clean: the previous run's dirty pages must not throttle this one's writes
                    out = root / f"e2e-{preset}-{jobs}-{attempt}-{folder.name}"
                    summary = generate(source, out, settings, jobs=jobs, progress=False)
                    runs[jobs].append(summary.written / summary.seconds)
            rates = [statistics.median(runs[1]), statistics.median(runs[2])]
            speedup = rates[1] / rates[0]
            lines.append(
                f"| {preset} | {size} | {len(source.items)} | {rates[0]:.1f} | {rates[1]:.1f} | {speedup:.2f}× |"
            )
    return lines


def dask_table(folders: dict[str, Path], root: Path) -> list[str]:
    """Steady-state pairs/s of `generate()` on 2 joblib processes and on a 2-worker Dask LocalCluster, median
    of 3, alternating; both warmed up first. The cluster's start-up is reported apart (paid once per command)."""
    from degrade.cluster import dask_executor

    lines = [
        "| preset | size | pairs | joblib, 2 jobs pairs/s | Dask, 2 workers pairs/s | Dask time ÷ joblib time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    start = time.perf_counter()
    with dask_executor(workers=2) as dask:
        startup = time.perf_counter() - start
        executors = {"joblib": JoblibExecutor(2), "dask": dask}
        ratios = []
        for preset in ("bopbtl", "old-photo"):
            settings = Settings(json.dumps(load_preset(preset)))
            for size, folder in folders.items():
                source = open_source(str(folder))
                for name, executor in executors.items():
                    out = root / f"warm-{preset}-{name}-{folder.name}"
                    generate(source, out, settings, executor=executor, limit=16, progress=False)
                runs: dict[str, list[float]] = {name: [] for name in executors}
                for attempt in range(3):
                    for name, executor in executors.items():
                        os.sync()
                        out = root / f"backend-{preset}-{name}-{attempt}-{folder.name}"
                        summary = generate(source, out, settings, executor=executor, progress=False)
                        runs[name].append(summary.written / summary.seconds)
                joblib_rate, dask_rate = statistics.median(runs["joblib"]), statistics.median(runs["dask"])
                ratios.append(joblib_rate / dask_rate)
                lines.append(
                    f"| {preset} | {size} | {len(source.items)} | {joblib_rate:.1f} | {dask_rate:.1f} "
                    f"| {ratios[-1]:.2f}× |"
                )
    lines += ["", f"- Worst ratio {max(ratios):.2f}× (goal: below 1.2×); the cluster started in {startup:.1f} s."]
    return lines


PEAK = """
import json, pathlib, sys
from degrade.dataset import Settings, generate
from degrade.presets import load_preset
from degrade.sources import open_source
settings = Settings(json.dumps(load_preset("old-photo")))
source = open_source(sys.argv[1])
generate(source, pathlib.Path(sys.argv[2]), settings, jobs=1, limit=int(sys.argv[3]), progress=False)
# VmHWM is this program's own peak (ru_maxrss would also count the parent's pages at fork time).
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def memory_table(folder: Path, counts: list[int], root: Path) -> list[str]:
    lines = ["| images | peak RSS (MiB), --jobs 1 |", "|---:|---:|"]
    for n in counts:
        out = subprocess.run(
            [sys.executable, "-c", PEAK, str(folder), str(root / f"mem{n}"), str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines.append(f"| {n} | {int(out.strip().splitlines()[-1]) / 1024:.0f} |")
    return lines


def structured_cost_table(paths_by_size: dict[str, list[Path]], rounds: int = 3) -> list[str]:
    """Per image, the time spent rendering structured ops beside the time spent rendering unstructured
    ones, within the same plans (each step timed on its own), plus the time to draw the whole plan."""
    cv2.setNumThreads(1)
    lines = [
        "| preset | size | structured ms/image | unstructured ms/image | structured ÷ unstructured "
        "| planning ms/image | masked % |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("old-photo", "bopbtl", "structured", "scratch-detect"):
        degrader = Degrader(name)
        for size, paths in paths_by_size.items():
            images = [load_image(p)[0] for p in paths]
            best = {"structured": float("inf"), "unstructured": float("inf"), "plan": float("inf")}
            coverage = []
            for r in range(rounds):
                spent = dict.fromkeys(best, 0.0)
                for i, img in enumerate(images):
                    start = time.perf_counter()
                    plan = degrader.plan(np.random.default_rng([i]), img.shape[:2], is_gray(img))
                    spent["plan"] += time.perf_counter() - start
                    work, labels = img.astype(np.float32) / 255, np.zeros(img.shape[:2], np.uint8)
                    for step in plan.ops:
                        start = time.perf_counter()
                        work, painted = run_steps(work, [step])
                        spent["structured" if get_op(step["op"]).structured else "unstructured"] += (
                            time.perf_counter() - start
                        )
                        np.maximum(labels, painted, out=labels)
                    if r == 0:
                        coverage.append(float((labels > 0).mean()))
                best = {k: min(best[k], spent[k] / len(images)) for k in best}
            s_ms, u_ms, p_ms = (best[k] * 1e3 for k in ("structured", "unstructured", "plan"))
            ratio = f"{s_ms / u_ms:.2f}" if u_ms > 0 else "n/a"
            lines.append(
                f"| {name} | {size} | {s_ms:.2f} | {u_ms:.2f} | {ratio} | {p_ms:.2f} | {100 * np.mean(coverage):.2f} |"
            )
    return lines


SECTIONS = ("single", "degrade", "e2e", "dask", "memory", "structured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke check")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    parser.add_argument(
        "--e2e-out", type=Path, default=None, help="where the end-to-end runs write (default: a temporary folder)"
    )
    args = parser.parse_args()
    sections = args.only or SECTIONS
    keep_freed_memory()  # as degrade-gen's workers do; process-wide, so every method here runs under it alike
    n_single, n_e2e, mem_counts = (16, (60, 30), [20, 100]) if args.quick else (48, (1200, 400), [100, 2000])
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=args.e2e_out) as e2e_tmp:
        root = Path(tmp)
        if "single" in sections or "degrade" in sections:
            single = {s: make_inputs(root / f"single{i}", n_single, size) for i, (s, size) in enumerate(SIZES.items())}
        if "single" in sections:
            print(f"## One core, per pair ({n_single} images per size, best of 3 passes)\n")
            print("\n".join(single_core_table(single, root / "single-out")))
        if "degrade" in sections:
            print("\n## One core, degradation only (no I/O)\n")
            print("\n".join(degradation_table(single)))
        where = f", writing to {args.e2e_out}" if args.e2e_out else ""
        if "e2e" in sections or "dask" in sections:
            e2e = {s: root / f"e2e{i}" for i, s in enumerate(SIZES)}
            for size, folder, n in zip(SIZES.values(), e2e.values(), n_e2e, strict=True):
                make_inputs(folder, n, size, seed=1)
        if "e2e" in sections:
            print(f"\n## End to end, `generate()` (steady state, {' and '.join(map(str, n_e2e))} images{where})\n")
            print("\n".join(end_to_end_table(e2e, Path(e2e_tmp))))
        if "dask" in sections:
            print(f"\n## Dask beside joblib on this machine ({' and '.join(map(str, n_e2e))} images{where})\n")
            print("\n".join(dask_table(e2e, Path(e2e_tmp))))
        if "memory" in sections:
            mem_folder = root / "mem"
            make_inputs(mem_folder, max(mem_counts), (256, 256), seed=2)
            print("\n## Peak memory, old-photo at 256²\n")
            print("\n".join(memory_table(mem_folder, mem_counts, root)))
        if "structured" in sections:
            paths = {
                s: make_inputs(root / f"structured{i}", n_single, size, seed=3)
                for i, (s, size) in enumerate(SIZES.items())
            }
            print(f"\n## Structured damage beside the unstructured part, one core ({n_single} images per size)\n")
            print("\n".join(structured_cost_table(paths)))


if __name__ == "__main__":
    main()
