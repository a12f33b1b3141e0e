"""Training data for the restoration model, as torch datasets of aligned crops.

- `PairsDataset`: `degrade-gen` output on disk (clean/, degraded/, mask/, manifest.jsonl).
- `ShardsDataset`: `degrade-gen --format shards` output (tar shards), the same samples in the same order;
  `open_pairs` picks one of the two from the folder's dataset.json, and concatenates several folders (say
  renders of two presets, so that a model learns how strong the damage is rather than one strength).
- `OnlineDataset`: clean photos degraded on the fly by `degrade` (an endless supply of new damage).
- `FolderDataset`: unpaired photos, e.g. real old photos for VAE A.

Every sample is a dict of float tensors in (C, H, W): images in [-1, 1] (the VAEs' tanh range) and
`mask` in {0, 1}. The clean image, the degraded image and the mask of one sample share one crop and
one flip. Randomness is a pure function of (seed, epoch, sample id) through `numpy.random.SeedSequence`,
never of the worker process or the order of loading: any `DataLoader(num_workers=...)` gives the
same batches, and `set_epoch` moves every sample to a new crop, as `DistributedSampler` does.

`jitter` (`Jitter`, off by default) varies the look of the clean photos, drawn from the sample's stream: a
model trained on a few photos otherwise learns that clean means vivid and contrasty, and "restores" every
input toward that look. `saturation` scales the chroma about BT.601 luma, `contrast` every channel about
the clean crop's mean luma, each log-uniformly within exp(±value). Online data is jittered before the damage; a
pair is jittered on both sides with the same maps. Both maps are affine, so on the degraded side they
commute with the `fade` op's blend toward luma (saturation exactly) or turn one fade, cast or tint into
another of the same strength with another offset (contrast), while the damage's own geometry is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from degrade import Degrader
from degrade.ops.base import luminance
from degrade.pipeline import is_gray
from degrade.seeding import stable_hash
from degrade.shards import Member, ShardError, is_shards, read_index
from degrade.sources import ImageError, SourceItem, load_image, open_source

Sample = dict[str, Any]


class DataError(ValueError):
    """A dataset that cannot be used; the message names the folder or file."""


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W) in [-1, 1]; uint8 (H, W) mask (0/255 or 0/1) -> (1, H, W) in {0, 1}."""
    if img.ndim == 2:
        return torch.from_numpy((img > 0).astype(np.float32))[None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def _rng(seed: int, epoch: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch, key)))


def _pad_to(img: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an image smaller than `size` on either side up to it (crops never see black borders)."""
    h, w = img.shape[:2]
    if h >= size and w >= size:
        return img
    return cv2.copyMakeBorder(img, 0, max(size - h, 0), 0, max(size - w, 0), cv2.BORDER_REFLECT_101)


def crop_window(rng: np.random.Generator, shape: Sequence[int], size: int) -> tuple[slice, slice, bool]:
    """A random `size` x `size` window inside `shape` (H, W, ...) and a horizontal-flip coin."""
    h, w = shape[0], shape[1]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return slice(y, y + size), slice(x, x + size), bool(rng.random() < 0.5)


def aligned_crops(rng: np.random.Generator, images: Sequence[np.ndarray], size: int, flips: bool) -> list[np.ndarray]:
    """The same random crop (and flip) of every image in `images` (all the same height and width)."""
    padded = [_pad_to(img, size) for img in images]
    rows, cols, flip = crop_window(rng, padded[0].shape, size)
    out = [img[rows, cols] for img in padded]
    return [np.ascontiguousarray(img[:, ::-1]) for img in out] if flips and flip else out


def saturate(img: np.ndarray, scale: float) -> np.ndarray:
    """`img` (H, W, 3) uint8 with its chroma scaled by `scale` about each pixel's BT.601 luma (which stays):
    below 1 more muted, above 1 more vivid; gray pixels are unchanged."""
    pixels = img.astype(np.float32)
    luma = luminance(pixels)
    return np.clip(luma[..., None] + scale * (pixels - luma[..., None]) + 0.5, 0, 255).astype(np.uint8)


def stretch(img: np.ndarray, scale: float, pivot: float) -> np.ndarray:
    """`img` (H, W, 3) uint8 with every value moved `scale` times its distance from `pivot` (8-bit units):
    luma contrast about `pivot`, chroma scaled alike (hue and saturation ratio kept)."""
    pixels = img.astype(np.float32)
    return np.clip(pivot + scale * (pixels - pivot) + 0.5, 0, 255).astype(np.uint8)


#: BT.601 RGB -> (Y, Cb, Cr) without offsets, the basis in which `rotate_hue` turns chroma about luma.
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64)


def rotate_hue(img: np.ndarray, degrees: float) -> np.ndarray:
    """`img` (H, W, 3) uint8 with its (Cb, Cr) chroma turned by `degrees` about each pixel's BT.601 luma (which
    stays, as do saturation and gray pixels): a colour cast becomes another cast of the same strength."""
    angle = np.deg2rad(degrees)
    turn = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    matrix = (np.linalg.inv(_YCBCR) @ turn @ _YCBCR).astype(np.float32)
    return np.clip(img.astype(np.float32) @ matrix.T + 0.5, 0, 255).astype(np.uint8)


def log_uniform(rng: np.random.Generator, spread: float) -> float:
    """A log-uniform scale in [exp(-spread), exp(spread)]."""
    return float(np.exp(rng.uniform(-spread, spread)))


#: Upper bound of each `Jitter` spread (the lower is 0), checked here and, under its option name, by restore.train.
JITTER_LIMITS = {"saturation": 1.0, "contrast": 1.0, "hue": 180.0}


@dataclass(frozen=True)
class Jitter:
    """Spreads of the clean photos' chroma (`saturation`, log-uniform, in [0, 1]), contrast (`contrast`, likewise)
    and hue (`hue`, uniform in +-`hue` degrees, in [0, 180]); 0: off. A sample draws the saturation scale, the
    contrast scale, then the hue angle, each only when its spread is on, so turning one on leaves the others'
    draws (and every run without them) unchanged."""

    saturation: float = 0.0
    contrast: float = 0.0
    hue: float = 0.0

    def __post_init__(self) -> None:
        for name, top in JITTER_LIMITS.items():
            if not 0 <= getattr(self, name) <= top:
                raise DataError(f"{name} jitter must be in [0, {top:g}], got {getattr(self, name)}")

    def __call__(self, rng: np.random.Generator, *images: np.ndarray) -> list[np.ndarray]:
        """`images` (the clean one first) with one draw of the maps applied to each; the contrast pivots on
        the first image's mean luma, so every image gets the same affine map."""
        out = list(images)
        if self.saturation:
            scale = log_uniform(rng, self.saturation)
            out = [saturate(img, scale) for img in out]
        if self.contrast:
            scale, pivot = log_uniform(rng, self.contrast), float(luminance(out[0].astype(np.float32)).mean())
            out = [stretch(img, scale, pivot) for img in out]
        if self.hue:
            degrees = float(rng.uniform(-self.hue, self.hue))
            out = [rotate_hue(img, degrees) for img in out]
        return out


class _Epochs:
    """Shared epoch counter: `set_epoch(n)` draws new crops everywhere (call it once per epoch)."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class _Pairs(_Epochs, Dataset):
    """Aligned random crops of paired samples: keys `degraded`, `clean`, `mask`, `id`. Subclasses list `ids`
    and decode a sample's images; the crop depends only on (seed, epoch, id), never on where the bytes are."""

    ids: list[str]

    def __init__(self, crop: int, flips: bool, seed: int, jitter: Jitter = Jitter()) -> None:  # noqa: B008 (frozen)
        if not self.ids:
            raise DataError(f"{self.root}: the dataset holds no samples")
        self.crop, self.flips, self.seed, self.jitter = crop, flips, seed, jitter

    def __len__(self) -> int:
        return len(self.ids)

    def _images(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """(clean RGB, degraded RGB, mask) of sample `index` and where the degraded image is (for errors)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        sample_id = self.ids[index]
        clean, degraded, mask, where = self._images(index)
        if not clean.shape[:2] == degraded.shape[:2] == mask.shape[:2]:
            raise DataError(f"{where}: size differs from its clean image or mask")
        rng = _rng(self.seed, self.epoch, stable_hash(sample_id))
        clean, degraded, mask = aligned_crops(rng, (clean, degraded, mask), self.crop, self.flips)
        clean, degraded = self.jitter(rng, clean, degraded)
        return {"degraded": to_tensor(degraded), "clean": to_tensor(clean), "mask": to_tensor(mask), "id": sample_id}


class PairsDataset(_Pairs):
    """Aligned random crops of a `degrade-gen` output folder: keys `degraded`, `clean`, `mask`, `id`."""

    def __init__(
        self,
        root: str | Path,
        crop: int = 256,
        flips: bool = True,
        seed: int = 0,
        jitter: Jitter = Jitter(),  # noqa: B008 (frozen)
    ) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.jsonl"
        if not manifest.is_file():
            raise DataError(f"{self.root}: not a degrade-gen output folder (no manifest.jsonl)")
        if _layout_is_shards(self.root):
            raise DataError(
                f"{self.root}: a shards dataset (--format shards); read it with ShardsDataset or open_pairs"
            )
        self.ids, self.files = [], []
        for number, line in enumerate(manifest.read_text("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                files = {kind: self.root / record["files"][kind] for kind in ("clean", "degraded", "mask")}
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{manifest}:{number}: not a manifest record ({exc})") from None
            for path in files.values():  # paths come from a file: they must stay inside the dataset
                if not path.resolve().is_relative_to(self.root.resolve()):
                    raise DataError(f"{manifest}:{number}: file path leaves the dataset folder: {path}")
            self.ids.append(record["id"])
            self.files.append(files)
        super().__init__(crop, flips, seed, jitter)

    def _images(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        files = self.files[index]
        clean, degraded = (_read(files[kind], cv2.IMREAD_COLOR_RGB) for kind in ("clean", "degraded"))
        return clean, degraded, _read(files["mask"], cv2.IMREAD_GRAYSCALE), str(files["degraded"])


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise DataError(f"{path}: missing or unreadable image")
    return img


class ShardsDataset(_Pairs):
    """The same crops as `PairsDataset`, read from a `degrade-gen --format shards` dataset.

    Opening scans each shard's tar headers once; an item reads its three members by offset, so the
    dataset is map-style (any sampler, any `num_workers`) and gives the batches the folder layout gives.
    """

    def __init__(
        self,
        root: str | Path,
        crop: int = 256,
        flips: bool = True,
        seed: int = 0,
        jitter: Jitter = Jitter(),  # noqa: B008 (frozen)
    ) -> None:
        self.root = Path(root)
        if not _layout_is_shards(self.root):
            raise DataError(f"{self.root}: not a degrade-gen --format shards dataset (see its dataset.json)")
        try:
            samples = read_index(self.root)
        except ShardError as exc:
            raise DataError(str(exc)) from None
        self.ids = [sample_id for sample_id, _ in samples]
        self.members: list[dict[str, Member]] = [members for _, members in samples]
        super().__init__(crop, flips, seed, jitter)

    def _images(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        members = self.members[index]
        flags = {"clean": cv2.IMREAD_COLOR_RGB, "degraded": cv2.IMREAD_COLOR_RGB, "mask": cv2.IMREAD_GRAYSCALE}
        images = []
        for kind, flag in flags.items():
            try:
                img = cv2.imdecode(np.frombuffer(members[kind].read(), np.uint8), flag)
            except ShardError as exc:
                raise DataError(str(exc)) from None
            if img is None:
                raise DataError(f"{members[kind].shard}: member {self.ids[index]}.{kind}.png is not a readable image")
            images.append(img)
        return *images, f"{members['degraded'].shard}: {self.ids[index]}"


def _layout_is_shards(root: Path) -> bool:
    try:
        return is_shards(root)
    except ShardError as exc:
        raise DataError(str(exc)) from None


class ConcatPairs(ConcatDataset):
    """Several pair datasets as one, in the given order; `set_epoch` reaches each of them."""

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


def open_pairs(
    root: str | Path | Sequence[str | Path],
    crop: int = 256,
    flips: bool = True,
    seed: int = 0,
    jitter: Jitter = Jitter(),  # noqa: B008 (frozen)
) -> _Pairs | ConcatPairs:
    """The dataset of a `degrade-gen` output folder, whichever its layout (its dataset.json says), or of
    several folders one after the other (each sample keeps the crops it would get alone)."""
    if not isinstance(root, (str, Path)):
        roots = list(root)
        if not roots:
            raise DataError("no pairs folder given")
        if len(roots) > 1:
            return ConcatPairs([open_pairs(one, crop, flips, seed, jitter) for one in roots])
        root = roots[0]
    dataset = ShardsDataset if _layout_is_shards(Path(root)) else PairsDataset
    return dataset(root, crop, flips, seed, jitter)


class _Photos(_Epochs, Dataset):
    """Photos of a `degrade` source (a folder, `sample` or VOC), listed once, decoded per item; a photo that
    cannot be decoded is a DataError naming it."""

    def __init__(self, source: str | Path, crop: int = 256, flips: bool = True, seed: int = 0) -> None:
        self.items: list[SourceItem] = open_source(str(source)).items
        if not self.items:
            raise DataError(f"{source}: no usable photos")
        self.crop, self.flips, self.seed = crop, flips, seed

    def __len__(self) -> int:
        return len(self.items)

    def _crop(self, index: int) -> tuple[SourceItem, np.ndarray, np.random.Generator]:
        """Item `index`, a random crop of its photo, and the rest of that crop's stream (seed, epoch, id)."""
        item = self.items[index]
        try:
            photo = load_image(item.path)[0]
        except ImageError as exc:
            raise DataError(str(exc)) from None
        rng = _rng(self.seed, self.epoch, stable_hash(item.id))
        (crop,) = aligned_crops(rng, (photo,), self.crop, self.flips)
        return item, crop, rng


class OnlineDataset(_Photos):
    """Clean photos (a folder, `sample` or VOC: any `degrade` source) cropped, then degraded on the fly.

    Each item is a fresh crop of a source photo degraded by `preset`, crop and damage drawn from one
    stream per (seed, epoch, photo id): unlimited variety without writing pairs to disk, still reproducible.
    Keys: `degraded`, `clean`, `mask`, `id`.
    """

    def __init__(
        self,
        source: str | Path,
        preset: str | Path = "old-photo",
        crop: int = 256,
        flips: bool = True,
        seed: int = 0,
        jitter: Jitter = Jitter(),  # noqa: B008 (frozen)
    ) -> None:
        super().__init__(source, crop, flips, seed)
        self.degrader, self.jitter = Degrader(preset), jitter

    def __getitem__(self, index: int) -> Sample:
        item, clean, rng = self._crop(index)
        (clean,) = self.jitter(rng, clean)
        rendered = self.degrader(clean, rng)
        return {
            "degraded": to_tensor(rendered.degraded),
            "clean": to_tensor(rendered.clean),
            "mask": to_tensor(rendered.mask),
            "id": item.id,
        }


class FolderDataset(_Photos):
    """Random crops of unpaired photos in a folder (searched recursively), e.g. real old photos for VAE A.

    Keys: `image`, `id`, `gray` (True for black-and-white photos, which most real old photos are).
    """

    def __getitem__(self, index: int) -> Sample:
        item, image, _ = self._crop(index)
        return {"image": to_tensor(image), "id": item.id, "gray": is_gray(image)}
