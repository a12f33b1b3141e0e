"""Collect the openly licensed photos the bundled restorer is trained on into one folder, offline.

    python tools/training_photos.py --out data/photos [--debs data/debs]

Sources (see ../shared/photo-sources.md in the project notes and docs/model-card.md):
- the sample photos of scikit-image, scikit-learn and matplotlib (`degrade.sources.SAMPLE_PHOTOS`), less
  `HELD_OUT`, which the tests use as an image the shipped weights never saw;
- Debian packages fetched with `apt-get download` (or taken from `--debs` if already there) and unpacked
  with `dpkg -x`: `opencv-doc` (its example photos, not its logos, charts, calibration boards or the
  painting), `mate-backgrounds` (the nature folder), `palapeli-data` (the puzzle photos), the Ubuntu
  community photos of `lomiri-wallpapers-16.04` / `-20.04` and the beach of `sddm-theme-maldives`;
- the raccoon `face` that SciPy bundled until 1.10 (`scipy/misc/face.dat`, bz2-compressed raw RGB), read
  from the wheel `pip download scipy==1.10.1` fetches (no SciPy is installed or imported from it).

    python tools/training_photos.py --gcompris --out data/photos-gcompris [--debs data/debs]

collects a second, larger set (docs/model-card.md, from v22): the photographs of
six activities of the educational suite GCompris (Debian `gcompris-qt-data`; animals, monuments, musicians,
underwater scenes; GPL-3+ and CC licences, listed in the package's copyright file), read from its Qt
resource bundles with `tools/qt_resources.py`.

Debian's `plasma-workspace-wallpapers` is deliberately absent: it is the unseen evaluation set of the model
card (`benchmarks/model_card.py`). Files are copied as they are (no resizing), named `<source>-<name>`, and a
`SOURCES.txt` lists where each came from, so the training data is inspectable and the command repeatable.
"""

from __future__ import annotations

import argparse
import bz2
import shutil
import subprocess
import sys
import tempfile
import zipfile
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from qt_resources import read_rcc

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
    # Ubuntu community wallpaper photos (CC-BY-4.0, CC-BY-SA-4.0, CC0; see the package's copyright file);
    # the abstract ones, the bokeh pattern and the render are left out.
    "lomiri-wallpapers-16.04": (
        "usr/share/backgrounds",
        (
            "Bridge_by_Sander_Klootwijk.jpg",
            "Dragonfly_by_Bolly.jpg",
            "Picture_0B_by_freespace.jpg",
            "Picture_1A_by_freespace.jpg",
            "Wine_by_Jakkub_Mede.jpg",
            "aitzgorri_by_Aitzol_Berasategi.jpg",
            "friends_by_Aitzol_Berasategi.jpg",
            "life_by_Aitzol_Berasategi.jpg",
            "picosdeeuropa_by_Aitzol_Berasategi.jpg",
            "seeding_by_Clements_Engelhardt.jpg",
            "sunset_by_Aitzol_Berasategi.jpg",
        ),
    ),
    "lomiri-wallpapers-20.04": ("usr/share/backgrounds", ("Kleiber_by_Lukas_Baubkus.jpg",)),
    "sddm-theme-maldives": ("usr/share/sddm/themes/maldives", ("background.jpg",)),
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


#: (package, folder of its Qt bundles, activities, shortest side): every WebP of these GCompris activities at
#: least as large as the pairs are rendered (512 px). In gcompris-qt-data 3.1 that is 117 files, all of them
#: photographs (checked by eye); the other activities hold drawings, paintings and renders.
GCOMPRIS = (
    "gcompris-qt-data",
    "usr/share/gcompris-qt/rcc",
    ("clickgame", "erase", "explore_farm_animals", "explore_monuments", "explore_world_animals", "explore_world_music"),
    512,
)


def unpack(package: str, debs: Path, root: Path) -> Path:
    """Unpack `package` into `root` (downloading its .deb into `debs` first if it is not there)."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], check=True)
    return root


#: SciPy's last release with its sample photo inside the package, and the photo's shape.
SCIPY_FACE = ("scipy==1.10.1", "scipy/misc/face.dat", (768, 1024, 3))


def wheel(requirement: str, debs: Path) -> Path:
    """The wheel of `requirement` ("name==version") in `debs`, downloaded from PyPI the first time."""
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl".lower()  # wheel names keep the project's case

    def found() -> list[Path]:
        return sorted(path for path in debs.glob("*.whl") if fnmatch(path.name.lower(), pattern))

    if not found():
        debs.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", requirement]
        subprocess.run([*command, "-d", str(debs)], check=True)
    return found()[-1]


def scipy_face(debs: Path, target: Path) -> str:
    """Write SciPy 1.10's raccoon photo to `target` (PNG) from its wheel, downloaded into `debs` once."""
    requirement, member, shape = SCIPY_FACE
    with zipfile.ZipFile(wheel(requirement, debs)) as archive:
        pixels = np.frombuffer(bz2.decompress(archive.read(member)), np.uint8).reshape(shape)
    cv2.imwrite(str(target), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    return f"{requirement} wheel /{member}"


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
    copied.append(("scipy-face.png", scipy_face(debs, out / "scipy-face.png")))
    return copied


def collect_gcompris(out: Path, debs: Path) -> list[tuple[str, str]]:
    """Copy the GCompris photos (`GCOMPRIS`) into `out` as they are stored (WebP); returns (name, origin)."""
    package, sub, activities, shortest = GCOMPRIS
    out.mkdir(parents=True, exist_ok=True)
    copied: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack(package, debs, Path(tmp))
        for activity in activities:
            bundle = root / sub / f"{activity}.rcc"
            if not bundle.is_file():
                raise SystemExit(f"{bundle}: missing from {package}")
            for inner, contents in sorted(read_rcc(bundle.read_bytes(), str(bundle))):
                if inner.suffix != ".webp":
                    continue
                pixels = cv2.imdecode(np.frombuffer(contents, np.uint8), cv2.IMREAD_UNCHANGED)
                if pixels is None:
                    raise SystemExit(f"{bundle}: {inner} does not decode")
                if min(pixels.shape[:2]) < shortest:
                    continue
                parts = inner.parts  # named from below the activity's resource folder, or whole if it has none
                local = PurePosixPath(*parts[parts.index("resource") + 1 :] if "resource" in parts else parts)
                name = f"gcompris-{activity}-{'-'.join(local.parts)}"
                (out / name).write_bytes(contents)
                copied.append((name, f"Debian {package} /{sub}/{activity}.rcc:/{inner}"))
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to fill with the training photos")
    parser.add_argument("--debs", type=Path, default=Path("data/debs"), help="where .deb files are kept")
    parser.add_argument(
        "--gcompris",
        action="store_true",
        help="collect the GCompris photos (the second, larger set), not the main one",
    )
    args = parser.parse_args()
    copied = (collect_gcompris if args.gcompris else collect)(args.out, args.debs)
    # Written last: tools/train_bundled.py takes a folder with SOURCES.txt as completely collected.
    (args.out / "SOURCES.txt").write_text("".join(f"{name}\t{origin}\n" for name, origin in copied))
    print(f"{len(copied)} photos in {args.out}")


if __name__ == "__main__":
    main()
