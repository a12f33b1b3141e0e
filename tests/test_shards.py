"""Tar shards: every sample round-trips exactly, tar bytes are fixed, runs resume, restore reads them."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from degrade.cli import gen
from degrade.dataset import Settings, generate
from degrade.presets import load_preset
from degrade.shards import member_names, read_index
from degrade.sources import open_source

SIZE = 3  # samples per shard: 10 samples make shards of 3, 3, 3 and 1


def settings() -> Settings:
    return Settings(json.dumps(load_preset("old-photo")), seed=7, repeats=2)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def members(root: Path) -> dict[str, bytes]:
    """Every member of every shard, by name (names are unique across a dataset)."""
    found: dict[str, bytes] = {}
    for shard in sorted(root.glob("pairs-*.tar")):
        with tarfile.open(shard) as tar:
            for info in tar:
                found[info.name] = tar.extractfile(info).read()
    return found


@pytest.fixture(scope="module")
def folder(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("folder") / "pairs"
    generate(open_source(str(photo_dir)), out, settings(), jobs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def shards(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "pairs"
    summary = generate(open_source(str(photo_dir)), out, settings(), jobs=1, progress=False, shard_size=SIZE)
    assert (summary.written, summary.skipped, summary.failed) == (10, 0, 0)
    return out


def test_every_sample_round_trips_exactly(folder: Path, shards: Path) -> None:
    records = [json.loads(line) for line in lines(folder / "manifest.jsonl")]
    shard_lines = lines(shards / "manifest.jsonl")
    assert [json.loads(line) for line in shard_lines] == [{**r, "files": member_names(r["id"])} for r in records]
    found = members(shards)
    expected = {}
    for record, line in zip(records, shard_lines, strict=True):
        for kind, rel in record["files"].items():
            expected[f"{record['id']}.{kind}.png"] = (folder / rel).read_bytes()
        expected[f"{record['id']}.json"] = line
    assert found == expected
    info, shard_info = (json.loads((root / "dataset.json").read_text()) for root in (folder, shards))
    assert info.pop("layout") == {"kind": "folder"}
    assert shard_info.pop("layout") == {"kind": "shards", "shard_size": SIZE}
    assert shard_info == info and shard_info["complete"]
    assert (shards / "errors.jsonl").read_bytes() == (folder / "errors.jsonl").read_bytes()
    tars = [f"pairs-00000{k}.tar" for k in range(4)]
    assert sorted(p.name for p in shards.iterdir()) == sorted(
        [*tars, "dataset.json", "errors.jsonl", "manifest.jsonl", "shards.jsonl"]
    )


def test_shards_hold_consecutive_samples_in_fixed_tar_bytes(shards: Path) -> None:
    ids = [json.loads(line)["id"] for line in lines(shards / "manifest.jsonl")]
    index = [json.loads(line) for line in lines(shards / "shards.jsonl")]
    assert [entry["samples"] for entry in index] == [3, 3, 3, 1]
    assert [i for entry in index for i in entry["ids"]] == ids
    for entry in index:
        path = shards / entry["shard"]
        assert path.stat().st_size == entry["bytes"]
        with tarfile.open(path) as tar:
            infos = tar.getmembers()
        order = [name for i in entry["ids"] for name in [*member_names(i).values(), f"{i}.json"]]
        assert [info.name for info in infos] == order
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode) == (0, 0, 0, "", "", 0o644)
            assert info.isfile()
    assert [sample_id for sample_id, _ in read_index(shards)] == ids


def test_same_bytes_with_two_workers_and_nothing_redone(shards: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    generate(open_source(str(photo_dir)), out, settings(), jobs=2, progress=False, shard_size=SIZE)
    assert tree_bytes(out) == tree_bytes(shards)
    tars = {p: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    summary = generate(open_source(str(photo_dir)), out, settings(), jobs=1, progress=False, shard_size=SIZE)
    assert (summary.written, summary.skipped) == (0, 10)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.tar")} == tars
    assert tree_bytes(out) == tree_bytes(shards)


def test_resume_repairs_what_a_kill_leaves(shards: Path, folder: Path, photo_dir: Path, tmp_path: Path) -> None:
    """Killed while packing shard 1: it was renamed but not indexed, its samples are still staged; the
    next sample is half staged, a temporary tar and a torn manifest line are left behind."""
    out = tmp_path / "pairs"
    shutil.copytree(shards, out)
    index = lines(out / "shards.jsonl")
    (out / "shards.jsonl").write_bytes(index[0] + index[1][:30])
    for name in ("pairs-000002.tar", "pairs-000003.tar"):
        (out / name).unlink()
    (out / ".pairs-000002.tar.99.tmp").write_bytes(b"partial")
    manifest = lines(out / "manifest.jsonl")
    (out / "manifest.jsonl").write_bytes(b"".join(manifest[:6]) + manifest[6][:50])
    staged = [json.loads(line)["id"] for line in manifest[3:7]]  # shard 1's samples and the next one
    for number, sample_id in enumerate(staged):
        for kind in ("clean", "degraded", "mask", "labels")[: 2 if number == 3 else 4]:
            target = out / "staging" / kind / f"{sample_id}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / kind / f"{sample_id}.png", target)
    (out / "dataset.json").write_text(json.dumps({**json.loads((out / "dataset.json").read_text()), "complete": False}))
    summary = generate(open_source(str(photo_dir)), out, settings(), jobs=2, progress=False, shard_size=SIZE)
    assert (summary.written, summary.skipped) == (4, 6)
    assert tree_bytes(out) == tree_bytes(shards)


def test_a_larger_limit_fills_the_short_last_shard(shards: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    generate(open_source(str(photo_dir)), out, settings(), limit=2, progress=False, shard_size=SIZE)
    assert [json.loads(line)["samples"] for line in lines(out / "shards.jsonl")] == [3, 1]
    generate(open_source(str(photo_dir)), out, settings(), progress=False, shard_size=SIZE)
    assert tree_bytes(out) == tree_bytes(shards)


def test_a_damaged_shard_is_made_again(shards: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    shutil.copytree(shards, out)
    damaged = out / "pairs-000001.tar"
    damaged.write_bytes(damaged.read_bytes()[:5000])
    summary = generate(open_source(str(photo_dir)), out, settings(), progress=False, shard_size=SIZE)
    assert summary.written == 3
    assert members(out) == members(shards)  # the same samples, byte for byte; they moved to the end
    ids = [json.loads(line)["id"] for line in lines(out / "manifest.jsonl")]
    assert sorted(ids) == sorted(json.loads(line)["id"] for line in lines(shards / "manifest.jsonl"))
    assert [sample_id for sample_id, _ in read_index(out)] == ids


def test_cli_shards_skip_bad_inputs(photo_dir: Path, tmp_path: Path) -> None:
    """Shards are cut from the samples that succeeded, in order: a bad input shifts, it leaves no hole."""
    src = tmp_path / "src"
    shutil.copytree(photo_dir, src)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")  # sorts between astronaut and camera
    out = tmp_path / "pairs"
    args = ["--src", str(src), "--out", str(out), "--repeats", "2", "--seed", "7", "--format", "shards"]
    result = CliRunner().invoke(gen, [*args, "--shard-size", str(SIZE), "-q"])
    assert result.exit_code == 0, result.output
    assert "written 10, skipped 0 (already done), failed 2" in result.output
    assert [json.loads(line)["id"] for line in lines(out / "errors.jsonl")] == ["broken_r0", "broken_r1"]
    ids = [json.loads(line)["id"] for line in lines(out / "manifest.jsonl")]
    index = [json.loads(line) for line in lines(out / "shards.jsonl")]
    assert [entry["samples"] for entry in index] == [3, 3, 3, 1]
    assert [entry["ids"] for entry in index] == [ids[:3], ids[3:6], ids[6:9], ids[9:]]
    assert ids[:3] == ["astronaut_r0", "astronaut_r1", "chelsea_r0"]
    result = CliRunner().invoke(gen, ["--src", str(src), "--out", str(tmp_path / "o"), "--shard-size", "5"])
    assert result.exit_code != 0 and "use it with --format shards" in result.output
    result = CliRunner().invoke(gen, [*args, "-q"])  # the default shard size is not this dataset's
    assert result.exit_code != 0 and "layout.shard_size: 3 before, 1000 now" in result.output


def test_restore_reads_shards_as_it_reads_folders(folder: Path, shards: Path) -> None:
    torch = pytest.importorskip("torch")
    from restore.data import PairsDataset, ShardsDataset, open_pairs

    from_folder, from_shards = open_pairs(folder, crop=32, seed=1), open_pairs(shards, crop=32, seed=1)
    assert isinstance(from_folder, PairsDataset) and isinstance(from_shards, ShardsDataset)
    for epoch in (0, 1):
        from_folder.set_epoch(epoch)
        from_shards.set_epoch(epoch)
        loaders = [
            torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(3))
            for dataset in (from_folder, from_shards)
        ]
        parallel = torch.utils.data.DataLoader(from_shards, batch_size=4, num_workers=2 if epoch else 0)
        for a, b in zip(*loaders, strict=True):
            assert a["id"] == b["id"]
            for key in ("degraded", "clean", "mask"):
                assert torch.equal(a[key], b[key])
        serial = torch.utils.data.DataLoader(from_folder, batch_size=4)
        for a, b in zip(serial, parallel, strict=True):
            assert a["id"] == b["id"] and torch.equal(a["degraded"], b["degraded"])


def test_restore_names_a_damaged_shard(shards: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from restore.data import DataError, PairsDataset, ShardsDataset

    with pytest.raises(DataError, match="a shards dataset"):
        PairsDataset(shards)
    out = tmp_path / "pairs"
    shutil.copytree(shards, out)
    shard = out / "pairs-000002.tar"
    shard.write_bytes(shard.read_bytes()[:3000])
    with pytest.raises(DataError, match="pairs-000002.tar"):
        ShardsDataset(out)[0]


def test_training_from_shards_matches_training_from_folders(folder: Path, shards: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from restore.train import TrainOptions, load_stage, train

    nets = []
    for pairs in (folder, shards):
        out = tmp_path / pairs.parent.name
        options = TrainOptions("vae-b", out, "tiny", pairs, steps=2, batch=4, crop=32, progress=False, device="cpu")
        train(options)
        nets.append(load_stage(options.out / "vae-b")[1]["vae"].state_dict())
    assert nets[0].keys() == nets[1].keys()
    assert all(torch.equal(nets[0][key], nets[1][key]) for key in nets[0])
