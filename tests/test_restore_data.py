"""Training datasets: aligned crops, value ranges, reproducibility across workers and epochs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from degrade.dataset import Settings, generate  # noqa: E402
from degrade.presets import load_preset  # noqa: E402
from degrade.sources import SourceError, open_source  # noqa: E402
from restore.data import (  # noqa: E402
    DataError,
    FolderDataset,
    Jitter,
    OnlineDataset,
    PairsDataset,
    open_pairs,
    rotate_hue,
    saturate,
    stretch,
)


@pytest.fixture(scope="module")
def pairs(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "pairs"
    settings = Settings(json.dumps(load_preset("structured")), seed=3, repeats=2, size=64)
    summary = generate(open_source(str(photo_dir)), out, settings, jobs=1, progress=False)
    assert summary.written == 10
    return out


def batches(dataset, workers: int) -> list[dict]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers, shuffle=False)
    return list(loader)


def test_pairs_are_aligned_crops_in_range(pairs: Path) -> None:
    dataset = PairsDataset(pairs, crop=32, seed=1)
    assert len(dataset) == 10
    for i in range(len(dataset)):
        sample = dataset[i]
        assert sample["degraded"].shape == sample["clean"].shape == (3, 32, 32)
        assert sample["mask"].shape == (1, 32, 32) and set(sample["mask"].unique().tolist()) <= {0.0, 1.0}
        assert sample["clean"].min() >= -1 and sample["clean"].max() <= 1
        # `structured` changes (almost) nothing outside the mask: the three crops line up.
        outside = (sample["degraded"] - sample["clean"]).abs().amax(dim=0)[sample["mask"][0] == 0]
        assert float(outside.quantile(0.99)) <= 0.4 + 1e-6


def test_same_batches_with_workers_and_new_crops_each_epoch(pairs: Path) -> None:
    dataset = PairsDataset(pairs, crop=32, seed=1)
    serial, parallel = batches(dataset, 0), batches(dataset, 2)
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["degraded"], b["degraded"]) and torch.equal(a["mask"], b["mask"])
    dataset.set_epoch(1)
    moved = batches(dataset, 0)
    assert not all(torch.equal(a["clean"], b["clean"]) for a, b in zip(serial, moved, strict=True))


def test_several_folders_are_one_dataset_whose_samples_keep_their_crops(photo_dir: Path, pairs: Path, tmp_path: Path):
    other = tmp_path / "other"
    settings = Settings(json.dumps(load_preset("old-photo")), seed=4, repeats=1, size=64)
    assert generate(open_source(str(photo_dir)), other, settings, jobs=1, progress=False).written == 5
    both = open_pairs([pairs, other], crop=32, seed=1)
    alone = [PairsDataset(pairs, crop=32, seed=1), PairsDataset(other, crop=32, seed=1)]
    assert open_pairs([pairs], crop=32, seed=1).ids == alone[0].ids  # one folder: the plain dataset
    for epoch in (0, 1):
        both.set_epoch(epoch)
        for dataset in alone:
            dataset.set_epoch(epoch)
        expected = [dataset[i] for dataset in alone for i in range(len(dataset))]
        assert len(both) == len(expected) == 15
        for i, sample in enumerate(expected):
            assert both[i]["id"] == sample["id"] and torch.equal(both[i]["degraded"], sample["degraded"])
    with pytest.raises(DataError, match="no pairs folder"):
        open_pairs([])


def test_pairs_refuse_a_manifest_that_leaves_the_folder(pairs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    record = json.loads((pairs / "manifest.jsonl").read_text().splitlines()[0])
    record["files"]["clean"] = "../../etc/passwd"
    (bad / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match="leaves the dataset folder"):
        PairsDataset(bad)
    with pytest.raises(DataError, match="no manifest.jsonl"):
        PairsDataset(tmp_path)


def test_online_dataset_degrades_on_the_fly_reproducibly(photo_dir: Path) -> None:
    dataset = OnlineDataset(photo_dir, preset="structured", crop=32, seed=5)
    first = [dataset[i] for i in range(len(dataset))]
    again = [dataset[i] for i in range(len(dataset))]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a["degraded"], b["degraded"]) and torch.equal(a["mask"], b["mask"])
        assert a["degraded"].shape == (3, 32, 32)
    damaged = [s for s in first if bool(s["mask"].any())]
    assert damaged, "structured damage shows up in some of the crops"
    for s in damaged:  # the mask marks where the degraded crop differs from its clean crop
        diff = (s["degraded"] - s["clean"]).abs().amax(dim=0)
        assert float(diff[s["mask"][0] > 0].mean()) > float(diff[s["mask"][0] == 0].mean())
    dataset.set_epoch(3)
    assert not all(torch.equal(a["clean"], dataset[i]["clean"]) for i, a in enumerate(first))


def test_folder_dataset_pads_small_photos_and_flags_gray(photo_dir: Path) -> None:
    dataset = FolderDataset(photo_dir, crop=64, seed=0)
    samples = [dataset[i] for i in range(len(dataset))]
    assert all(s["image"].shape == (3, 64, 64) for s in samples)  # photos are 48 px high: reflect-padded
    assert [s["gray"] for s in samples].count(True) == 1  # scikit-image's camera is the gray one
    with pytest.raises(SourceError, match="nothing"):
        FolderDataset(photo_dir / "nothing")


def test_corrupt_photo_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    dataset = FolderDataset(tmp_path, crop=16)
    with pytest.raises(DataError, match="broken.jpg"):
        dataset[0]


def _luma_chroma(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BT.601 luma (H, W) and chroma (image minus luma, (3, H, W)) of a (3, H, W) tensor in [-1, 1], 8-bit units."""
    pixels = (image + 1) * 127.5
    luma = (torch.tensor([0.299, 0.587, 0.114])[:, None, None] * pixels).sum(0)
    return luma, pixels - luma


def test_saturation_jitter_scales_both_sides_of_a_pair_alike(pairs: Path) -> None:
    plain = PairsDataset(pairs, crop=32, seed=1)
    jittered = PairsDataset(pairs, crop=32, seed=1, jitter=Jitter(saturation=0.5))
    scales = []
    for i in range(len(plain)):
        a, b = plain[i], jittered[i]
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(b["clean"], jittered[i]["clean"])
        ratios = []
        for side in ("clean", "degraded"):  # luma stays, chroma is scaled by one factor on both sides
            (luma_a, chroma_a), (luma_b, chroma_b) = _luma_chroma(a[side]), _luma_chroma(b[side])
            unclipped = (((b[side] + 1) * 127.5 - 127.5).abs() < 127).all(0)  # scaling past 0 or 255 clips
            assert float((luma_a - luma_b)[unclipped].abs().max()) <= 1.0
            strong = chroma_a.abs() > 20
            if bool(strong.sum() > 50):
                ratios.append(float((chroma_b[strong] / chroma_a[strong]).median()))
        if len(ratios) == 2:
            assert ratios[0] == pytest.approx(ratios[1], rel=0.1)
            scales.append(ratios[0])
    assert scales and all(np.exp(-0.5) - 0.05 <= s <= np.exp(0.5) + 0.05 for s in scales)
    assert max(scales) - min(scales) > 0.1, "each sample draws its own scale"
    with pytest.raises(DataError, match="saturation jitter must be in"):
        Jitter(saturation=1.5)
    with pytest.raises(DataError, match="contrast jitter must be in"):
        Jitter(contrast=-0.5)
    with pytest.raises(DataError, match=r"hue jitter must be in \[0, 180\]"):
        Jitter(hue=200)


def test_contrast_jitter_maps_both_sides_of_a_pair_by_one_affine_map(pairs: Path) -> None:
    plain = PairsDataset(pairs, crop=32, seed=1)
    jittered = PairsDataset(pairs, crop=32, seed=1, jitter=Jitter(contrast=0.5))
    slopes = []
    for i in range(len(plain)):
        a, b = plain[i], jittered[i]
        assert torch.equal(a["mask"], b["mask"])
        fits = []
        for side in ("clean", "degraded"):
            x, y = ((t + 1) * 127.5 for t in (a[side], b[side]))
            inside = (y > 2) & (y < 253)  # values pushed past 0 or 255 are clipped
            if int(inside.sum()) < 200 or float(x[inside].std()) < 10:
                break
            slope, offset = np.polyfit(x[inside].numpy(), y[inside].numpy(), 1)
            fits.append((slope, offset))
        if len(fits) == 2:  # one map on both sides: same slope and the same fixed point
            assert fits[0][0] == pytest.approx(fits[1][0], abs=0.03)
            assert fits[0][1] == pytest.approx(fits[1][1], abs=4.0)
            slopes.append(fits[0][0])
    assert slopes and all(np.exp(-0.5) - 0.03 <= s <= np.exp(0.5) + 0.03 for s in slopes)
    assert max(slopes) - min(slopes) > 0.1, "each sample draws its own scale"


def _cb_cr(pixels: np.ndarray) -> np.ndarray:
    """BT.601 (Cb, Cr) of (..., 3) RGB values, as complex numbers."""
    r, g, b = (pixels[..., i].astype(np.float64) for i in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    return (b - luma) * 0.564 + 1j * (r - luma) * 0.713


def test_hue_rotation_turns_chroma_about_luma() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(60, 196, (32, 32, 3), dtype=np.uint8)  # mid-range colours: a 40 degree turn never clips
    turned = rotate_hue(image, 40.0)
    luma = np.float32([0.299, 0.587, 0.114])
    assert np.abs(turned.astype(np.float32) @ luma - image.astype(np.float32) @ luma).max() <= 1.0
    before, after = _cb_cr(image), _cb_cr(turned)
    strong = np.abs(before) > 20  # rounding to uint8 blurs the angle of faint chroma
    np.testing.assert_allclose(np.abs(after[strong]), np.abs(before[strong]), rtol=0.05)
    angles = np.degrees(np.angle(after[strong] / before[strong]))
    assert np.median(angles) == pytest.approx(40.0, abs=1.0) and np.abs(angles - 40).max() < 5
    gray = np.repeat(image[..., :1], 3, axis=2)
    np.testing.assert_array_equal(rotate_hue(gray, 75.0), gray)
    np.testing.assert_array_equal(rotate_hue(image, 0.0), image)


def test_jitter_draws_saturation_then_contrast_from_the_sample_stream() -> None:
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    (out,) = Jitter(saturation=0.3, contrast=0.4)(np.random.default_rng(7), image)
    replay = np.random.default_rng(7)
    saturated = saturate(image, float(np.exp(replay.uniform(-0.3, 0.3))))
    scale = float(np.exp(replay.uniform(-0.4, 0.4)))
    pivot = float((saturated.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).mean())
    np.testing.assert_array_equal(out, stretch(saturated, scale, pivot))
    # Saturation alone draws exactly what it drew before contrast existed: old runs replay unchanged.
    (alone,) = Jitter(saturation=0.3)(np.random.default_rng(7), image)
    np.testing.assert_array_equal(alone, saturated)
    assert Jitter()(np.random.default_rng(7), image)[0] is image
    # Hue draws last, so a run with it keeps the saturation and contrast it would draw without.
    (hued,) = Jitter(saturation=0.3, contrast=0.4, hue=30)(np.random.default_rng(7), image)
    stream = np.random.default_rng(7)
    stream.uniform(size=2)  # the saturation and contrast draws
    np.testing.assert_array_equal(hued, rotate_hue(out, float(stream.uniform(-30, 30))))


def test_online_jitter_changes_the_clean_photo_before_damage(photo_dir: Path) -> None:
    plain = OnlineDataset(photo_dir, preset="structured", crop=32, seed=5)
    jittered = OnlineDataset(photo_dir, preset="structured", crop=32, seed=5, jitter=Jitter(0.5, 0.5))
    changed = [not torch.equal(plain[i]["clean"], jittered[i]["clean"]) for i in range(len(plain))]
    assert any(changed)
    for i in range(len(plain)):  # the damage is drawn after the scale, from the same stream: masks still line up
        s = jittered[i]
        diff = (s["degraded"] - s["clean"]).abs().amax(dim=0)
        if bool(s["mask"].any()) and bool((s["mask"] == 0).any()):
            assert float(diff[s["mask"][0] > 0].mean()) > float(diff[s["mask"][0] == 0].mean())
