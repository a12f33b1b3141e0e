"""Collect the openly licensed photos the bundled restorer is trained on into one folder, offline.

    python tools/training_photos.py --out data/photos [--debs data/debs]

Sources (see ../shared/photo-sources.md in the project notes and docs/model-card.md):
- the sample photos of scikit-image, scikit-learn and matplotlib (`degrade.sources.SAMPLE_PHOTOS`), less
  `HELD_OUT`, which the tests use as an image the shipped weights never saw;
- Debian packages fetched with `apt-get download` (or taken from `--debs` if already there) and unpacked
  with `dpkg -x`: `opencv-doc` (its example photos, not its logos, charts, calibration boards or the
  painting), `mate-backgrounds` (the nature folder) and `palapeli-data` (the puzzle photos).

Debian's `plasma-workspace-wallpapers` is deliberately absent: it is the unseen evaluation set of the model
card (`benchmarks/model_card.py`). Files are copied as they are (no resizing), named `<source>-<name>`, and a
`SOURCES.txt` lists where each came from, so the training data is inspectable and the command repeatable.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from degrade.sources import SAMPLE_PHOTOS, _package_dir

#: Sample photos kept out of training so the tests can check the weights on an image they never saw.
HELD_OUT = ("chelsea.png",)

#: Debian package -> (folder inside the package, photo file names).
DEBIAN_PHOTOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opencv-doc": (
        "usr/share/doc/opencv-doc/examples/data",
        (
            "HappyFish.jpg",
            "aero1.jpg",
            "aero3.jpg",
            "aloeL.jpg",
            "apple.jpg",
            "baboon.jpg",
            "basketball1.png",
            "board.jpg",
            "building.jpg",
            "butterfly.jpg",
            "ela_original.jpg",
            "fruits.jpg",
            "graf1.png",
            "home.jpg",
            "left.jpg",
            "leuvenA.jpg",
            "licenseplate_motion.jpg",
            "messi5.jpg",
            "orange.jpg",
            "rubberwhale1.png",
            "smarties.png",
            "squirrel_cls.jpg",
            "stuff.jpg",
        ),
    ),
    "mate-backgrounds": (
        "usr/share/backgrounds/mate/nature",
        (
            "Aqua.jpg",
            "Blinds.jpg",
            "Dune.jpg",
            "FreshFlower.jpg",
            "Garden.jpg",
            "GreenMeadow.jpg",
            "LadyBird.jpg",
            "RainDrops.jpg",
            "Storm.jpg",
            "TwoWings.jpg",
            "Wood.jpg",
            "YellowFlower.jpg",
        ),
    ),
    "palapeli-data": (
        "usr/share/palapeli/collection",
        (
            "castle-maintenon.jpg",
            "cincinnati-bridge.jpg",
            "citrus-fruits.jpg",
            "european-honey-bee.jpg",
            "panther-chameleon-female.jpg",
        ),
    ),
}


def unpack(package: str, debs: Path, root: Path) -> Path:
    """Unpack `package` into `root` (downloading its .deb into `debs` first if it is not there)."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], check=True)
    return root


def collect(out: Path, debs: Path) -> list[tuple[str, str]]:
    """Copy every training photo into `out`; returns (file name, origin) pairs."""
    out.mkdir(parents=True, exist_ok=True)
    copied: list[tuple[str, str]] = []

    def take(source: str, path: Path, origin: str) -> None:
        if not path.is_file():
            raise SystemExit(f"{path}: missing (is {source} installed?)")
        name = f"{source}-{path.name}"
        shutil.copyfile(path, out / name)
        copied.append((name, origin))

    for package, dist, sub, names in SAMPLE_PHOTOS:
        folder = _package_dir(package)
        if folder is None:
            raise SystemExit(f"{package}: not installed; pip install {dist}")
        for name in names:
            if name not in HELD_OUT:
                take(package, folder / sub / name, f"{dist} {sub}/{name}")
    with tempfile.TemporaryDirectory() as tmp:
        for package, (sub, names) in DEBIAN_PHOTOS.items():
            root = unpack(package, debs, Path(tmp) / package)
            for name in names:
                take(package, root / sub / name, f"Debian {package} /{sub}/{name}")
    (out / "SOURCES.txt").write_text("".join(f"{name}\t{origin}\n" for name, origin in copied))
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to fill with the training photos")
    parser.add_argument("--debs", type=Path, default=Path("data/debs"), help="where .deb files are kept")
    args = parser.parse_args()
    copied = collect(args.out, args.debs)
    print(f"{len(copied)} photos in {args.out}")


if __name__ == "__main__":
    main()
