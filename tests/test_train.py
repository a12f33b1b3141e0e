"""Training: every stage runs and writes checkpoint, log and samples; losses fall on a fixed batch; resume is
bit-exact; the mapping refuses missing or mismatched VAEs; two gloo processes train in step under torchrun."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from conftest import small_photo  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from degrade.dataset import Settings, generate  # noqa: E402
from degrade.presets import load_preset  # noqa: E402
from degrade.sources import open_source  # noqa: E402
from restore import stages  # noqa: E402
from restore.checkpoint import CheckpointError, flatten_optimizer, read, read_meta, save, unflatten_optimizer  # noqa: E402
from restore.cli import cli  # noqa: E402
from restore.config import model_config  # noqa: E402
from restore.data import PairsDataset  # noqa: E402
from restore.export import export, load_model  # noqa: E402
from restore.nets.vae import VAE  # noqa: E402
from restore.train import TrainError, TrainOptions, learning_rate, load_config, load_stage, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ORDER = ("vae-a", "vae-b", "mapping", "detector")


@pytest.fixture(scope="module")
def pairs(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "pairs"
    settings = Settings(json.dumps(load_preset("structured")), seed=3, repeats=2, size=64)
    assert generate(open_source(str(photo_dir)), out, settings, jobs=1, progress=False).written == 10
    return out


def options(out: Path, pairs: Path, stage: str, **changes) -> TrainOptions:
    base = TrainOptions(
        stage=stage,
        out=out,
        config="tiny",
        pairs=pairs,
        steps=2,
        batch=4,
        crop=32,
        checkpoint_every=1,
        validate_every=1,
        progress=False,
        device="cpu",
    )
    return replace(base, **changes)


def to_toml(config: dict) -> str:
    """A ModelConfig dict as TOML (JSON's literals are TOML's for strings, numbers and booleans)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items() if not isinstance(value, dict)]
    for section, values in config.items():
        if isinstance(values, dict):
            lines += [f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run(pairs: Path, photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A run folder with the four stages trained for 2 steps each, the mapping between those VAEs."""
    out = tmp_path_factory.mktemp("run")
    summaries = {}
    for stage in ORDER:
        real_old = photo_dir if stage == "vae-a" else None
        summaries[stage] = train(options(out, pairs, stage, real_old=real_old))
    return out, summaries


def test_several_pairs_folders_train_as_one(pairs: Path, tmp_path: Path) -> None:
    summary = train(options(tmp_path, (pairs, pairs), "detector", steps=1))
    meta = json.loads(Path(summary["checkpoint"]).with_suffix(".json").read_text())
    assert meta["options"]["pairs"] == [str(pairs), str(pairs)]


@pytest.mark.parametrize("stage", ORDER)
def test_each_stage_writes_checkpoints_log_and_sample_grids(run: tuple[Path, dict], stage: str) -> None:
    out, summaries = run
    folder = out / stage
    summary = summaries[stage]
    assert summary["step"] == 2 and Path(summary["checkpoint"]) == folder / "checkpoint-00000002.safetensors"
    assert (folder / "latest").read_text().strip() == "checkpoint-00000002"
    for step in (1, 2):
        assert (folder / f"checkpoint-{step:08d}.safetensors").is_file()
        meta = json.loads((folder / f"checkpoint-{step:08d}.json").read_text())
        assert meta["step"] == step and meta["stage"] == stage and meta["config"] == model_config("tiny").to_dict()
        grid = Image.open(folder / "samples" / f"step-{step:08d}.png")
        columns = {"vae-a": 2, "vae-b": 2, "mapping": 4, "detector": 3}[stage]
        assert grid.size == (columns * 34 - 2, 4 * 34 - 2)  # 4 validation samples of 32 px, 2 px gaps
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "losses" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(math.isfinite(v) for r in steps for v in r["losses"].values())
    assert steps[-1]["losses"] == summary["losses"] and steps[0]["lr"] == 2e-4
    validations = [r["validation"] for r in records if "validation" in r]
    assert len(validations) == 2 and validations[-1] == summary["validation"]
    assert set(validations[-1]) >= ({"iou", "f1"} if stage == "detector" else {"psnr", "ssim"})
    # The checkpoint holds the network, discriminators and optimiser moments; load_stage gives the network.
    tensors = load_file(folder / "checkpoint-00000002.safetensors")
    network = stages.NETWORKS[stage]
    assert f"optimizer.{network}.0.exp_avg" in tensors
    assert (stage == "detector") != any(k.startswith("discriminator.") for k in tensors)
    assert (stage == "vae-a") == any(k.startswith("latent_discriminator.") for k in tensors)
    config, nets = load_stage(folder)
    assert config == model_config("tiny") and list(nets) == [network] and not nets[network].training
    for key, value in nets[network].state_dict().items():
        assert torch.equal(value, tensors[f"{network}.{key}"])


@pytest.mark.parametrize("stage", ORDER)
def test_loss_falls_on_a_fixed_batch(pairs: Path, stage: str) -> None:
    torch.manual_seed(0)
    config = model_config("tiny")
    vaes = (VAE(config.vae), VAE(config.vae)) if stage == "mapping" else None
    trainer = stages.build(stage, config, 2e-3, torch.device("cpu"), vaes=vaes)
    dataset = PairsDataset(pairs, crop=32, seed=0)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    key = {"vae-a": "l1", "vae-b": "l1", "mapping": "latent", "detector": "focal"}[stage]
    losses = [trainer.step(batch)[key].item() for _ in range(30)]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, losses


@pytest.mark.parametrize("stage", ORDER)
def test_channels_last_changes_speed_not_training(pairs: Path, stage: str) -> None:
    """On the CPU the VAE and mapping stages train channels-last (frozen VAEs included), the detector does
    not; a few steps in either layout give the same losses and weights up to float rounding."""
    config = model_config("tiny")
    batch = torch.utils.data.default_collate([PairsDataset(pairs, crop=32, seed=0)[i] for i in range(4)])
    runs = []
    for channels_last in (None, False):
        torch.manual_seed(0)
        vaes = (VAE(config.vae), VAE(config.vae)) if stage == "mapping" else None
        trainer = stages.build(stage, config, 2e-3, torch.device("cpu"), vaes=vaes, channels_last=channels_last)
        runs.append((trainer, [trainer.step(batch) for _ in range(3)]))
    (default, default_losses), (contiguous, contiguous_losses) = runs
    kernels = [p for net in default.networks() for p in net.parameters() if p.ndim == 4 and min(p.shape) > 1]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels) == (stage != "detector")
    assert len(default.networks()) == len(default.modules) + (2 if stage == "mapping" else 0)
    for a, b in zip(default_losses, contiguous_losses, strict=True):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-5)
    network = stages.NETWORKS[stage]
    for key, value in default.modules[network].state_dict().items():
        torch.testing.assert_close(value, contiguous.modules[network].state_dict()[key], rtol=1e-3, atol=1e-5)


def test_detector_dice_weight_adds_the_dice_loss(pairs: Path) -> None:
    torch.manual_seed(0)
    config = model_config("tiny")
    batch = torch.utils.data.default_collate([PairsDataset(pairs, crop=32, seed=0)[i] for i in range(4)])
    plain = stages.build("detector", config, 2e-3, torch.device("cpu"))
    with_dice = stages.build("detector", config, 2e-3, torch.device("cpu"), stages.Weights(dice=1.0))
    with_dice.modules["detector"].load_state_dict(plain.modules["detector"].state_dict())
    assert set(plain.step(batch)) == {"focal"}
    losses = with_dice.step(batch)
    assert set(losses) == {"focal", "dice"} and 0 < losses["dice"].item() <= 1
    # Same start, same batch: the extra term changes the update.
    after_plain, after_dice = plain.modules["detector"].head.bias, with_dice.modules["detector"].head.bias
    assert not torch.equal(after_plain, after_dice)


def test_identity_loss_teaches_the_mapping_to_carry_clean_photos_through(pairs: Path) -> None:
    torch.manual_seed(0)
    config = model_config("tiny")
    vae_a, vae_b = VAE(config.vae).eval(), VAE(config.vae).eval()
    batch = torch.utils.data.default_collate([PairsDataset(pairs, crop=32, seed=0)[i] for i in range(4)])
    only_identity = stages.Weights(latent=0, l1=0, ssim=0, gan=0, feature_matching=0, identity=60)
    trainer = stages.build("mapping", config, 2e-3, torch.device("cpu"), only_identity, vaes=(vae_a, vae_b))
    mapping = trainer.modules["mapping"]

    def distance() -> float:  # what the identity loss measures, computed here from its definition
        with torch.no_grad():
            return (mapping(vae_a.encode(batch["clean"])) - vae_b.encode(batch["clean"])).abs().mean().item()

    before = distance()
    losses = [trainer.step(batch)["identity"].item() for _ in range(30)]
    assert losses[0] == pytest.approx(before, rel=1e-4)
    assert distance() < 0.7 * before
    plain = stages.build("mapping", config, 2e-3, torch.device("cpu"), vaes=(vae_a, vae_b))
    assert "identity" not in plain.step(batch)


def test_resume_is_bit_exact(pairs: Path, photo_dir: Path, tmp_path: Path) -> None:
    # batch 3 of 10 pairs: the checkpoint at step 2 falls mid-epoch, the run crosses an epoch; real old
    # photos add a second data stream and a third optimiser; decay_from 2: LR constant, then decaying.
    common = dict(real_old=photo_dir, batch=3, decay_from=2, checkpoint_every=2, validate_every=2)
    whole = options(tmp_path / "whole", pairs, "vae-a", steps=4, **common)
    train(whole)
    parts = options(tmp_path / "parts", pairs, "vae-a", steps=2, **common)
    train(parts)
    summary = train(replace(parts, steps=4, resume=True))
    assert summary["step"] == 4
    for step in (2, 4):
        a = load_file(whole.out / "vae-a" / f"checkpoint-{step:08d}.safetensors")
        b = load_file(parts.out / "vae-a" / f"checkpoint-{step:08d}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        meta_a, meta_b = (
            json.loads((o.out / "vae-a" / f"checkpoint-{step:08d}.json").read_text()) for o in (whole, parts)
        )
        for key in ("state", "data", "rng", "validation"):
            assert meta_a[key] == meta_b[key], key
        assert [r["losses"] for r in meta_a["history"]] == [r["losses"] for r in meta_b["history"]]
    logs = [(o.out / "vae-a" / "log.jsonl").read_text().splitlines() for o in (whole, parts)]
    strip = [[{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in log] for log in logs]
    assert strip[0] == strip[1] and [r["lr"] for r in strip[0] if "lr" in r] == [2e-4, 2e-4, 2e-4, 1e-4]


def test_until_trains_the_same_schedule_in_chunks(pairs: Path, tmp_path: Path) -> None:
    # until stops mid-schedule with a checkpoint (the LR still heads for 0 at `steps`); resuming finishes
    # the very run one call would have made.
    whole = options(tmp_path / "whole", pairs, "detector", steps=4, checkpoint_every=0, validate_every=0)
    train(whole)
    chunked = replace(whole, out=tmp_path / "chunked", until=3)
    assert train(chunked)["checkpoint"].endswith("checkpoint-00000003.safetensors")
    assert train(replace(chunked, until=None, resume=True))["step"] == 4
    a, b = (load_file(o.out / "detector" / "checkpoint-00000004.safetensors") for o in (whole, chunked))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    records = [[json.loads(line) for line in (o.out / "detector" / "log.jsonl").read_text().splitlines()]
               for o in (whole, chunked)]  # fmt: skip
    lrs = [[r["lr"] for r in log if "lr" in r] for log in records]
    assert lrs[0] == lrs[1] == [2e-4, 2e-4, 2e-4, 1e-4]


def test_a_run_from_before_a_config_field_existed_resumes(run: tuple[Path, dict], pairs: Path, tmp_path: Path) -> None:
    # Checkpoints written before mapping.context_film existed lack it; they were trained without it (the
    # default), so they resume.
    out = tmp_path / "run"
    shutil.copytree(run[0], out)
    for sidecar in (out / "mapping").glob("checkpoint-*.json"):
        meta = json.loads(sidecar.read_text())
        del meta["config"]["mapping"]["context_film"]
        sidecar.write_text(json.dumps(meta))
    assert train(options(out, pairs, "mapping", steps=3, resume=True))["step"] == 3


def test_a_stage_resumes_under_a_config_that_differs_only_elsewhere(
    run: tuple[Path, dict], pairs: Path, tmp_path: Path
) -> None:
    # The detector does not depend on the mapping's or the VAEs' widths: a preset that changes them keeps it
    # resumable, while a change in its own section is refused (test_resume_and_restart_are_checked).
    out, config = tmp_path / "run", model_config("tiny").to_dict()
    shutil.copytree(run[0] / "detector", out / "detector")
    config["mapping"]["context_film"] = True
    config["vae"]["base"] = 12
    (tmp_path / "other.json").write_text(json.dumps(config))
    resumed = train(options(out, pairs, "detector", steps=3, config=str(tmp_path / "other.json"), resume=True))
    assert resumed["step"] == 3
    # VAE B is trained against a discriminator: its widths are part of what a resume must match.
    shutil.copytree(run[0] / "vae-b", out / "vae-b")
    config = model_config("tiny").to_dict()
    config["discriminator"]["base"] = 12
    (tmp_path / "wider.json").write_text(json.dumps(config))
    with pytest.raises(TrainError, match=r"another config \(discriminator.base: 8 != 12\)"):
        train(options(out, pairs, "vae-b", steps=3, config=str(tmp_path / "wider.json"), resume=True))


def test_resume_and_restart_are_checked(run: tuple[Path, dict], pairs: Path, tmp_path: Path) -> None:
    out, _ = run
    with pytest.raises(TrainError, match="holds a training run already"):
        train(options(out, pairs, "detector"))
    with pytest.raises(TrainError, match="nothing to resume"):
        train(options(tmp_path, pairs, "detector", resume=True))
    bigger = tmp_path / "bigger.json"
    config = model_config("tiny").to_dict()
    config["detector"]["base"] = 12
    bigger.write_text(json.dumps(config))
    with pytest.raises(TrainError, match=r"another config \(detector.base: 8 != 12\)"):
        train(options(out, pairs, "detector", config=str(bigger), resume=True))
    with pytest.raises(TrainError, match="beyond steps=1"):
        train(options(out, pairs, "detector", steps=1, resume=True))
    # Already at the requested step: nothing to do, the summary names the existing checkpoint.
    assert train(options(out, pairs, "detector", resume=True))["checkpoint"].endswith("checkpoint-00000002.safetensors")


def test_mapping_refuses_missing_or_mismatched_vaes(run: tuple[Path, dict], pairs: Path, tmp_path: Path) -> None:
    out, _ = run
    with pytest.raises(TrainError, match=f"{tmp_path / 'vae-a'}: no trained vae-a checkpoint"):
        train(options(tmp_path, pairs, "mapping"))
    with pytest.raises(TrainError, match="holds a vae-b checkpoint, not vae-a"):
        train(options(tmp_path, pairs, "mapping", vae_a=out / "vae-b", vae_b=out / "vae-b"))
    config = model_config("tiny").to_dict()
    config["vae"]["latent"] = config["mapping"]["latent"] = 16
    wider = tmp_path / "wider.toml"
    wider.write_text(to_toml(config))
    assert load_config(str(wider)).vae.latent == 16
    with pytest.raises(TrainError, match=f"{out / 'vae-a'}: trained with another config"):
        train(options(tmp_path, pairs, "mapping", config=str(wider), vae_a=out / "vae-a", vae_b=out / "vae-b"))
    assert not (tmp_path / "mapping" / "latest").exists()


def test_skip_mapping_starts_from_the_fitted_translation_resumes_exactly_and_exports(
    run: tuple[Path, dict], pairs: Path, tmp_path: Path
) -> None:
    out, _ = run
    config = model_config("tiny").to_dict()
    config["mapping"]["skip"] = config["mapping"]["global_context"] = True
    path = tmp_path / "skip.toml"
    path.write_text(to_toml(config))
    runs = {}
    for name in ("whole", "parts"):  # the VAEs and detector were trained under tiny: only their sections count
        runs[name] = tmp_path / name
        for stage in ("vae-a", "vae-b", "detector"):
            shutil.copytree(out / stage, runs[name] / stage)
    whole = options(runs["whole"], pairs, "mapping", config=str(path), decay_from=1)
    train(whole)
    parts = replace(whole, out=runs["parts"], steps=1)
    train(parts)
    train(replace(parts, steps=2, resume=True))
    for run_dir in runs.values():
        records = [json.loads(line) for line in (run_dir / "mapping" / "log.jsonl").read_text().splitlines()]
        assert [r for r in records if "initialised" in r] == [records[0]]
        assert records[0]["step"] == 0 and 0 < records[0]["initialised"]["skip_fit_error"] < 1
    a, b = (load_file(r / "mapping" / "checkpoint-00000002.safetensors") for r in runs.values())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    exported = export(runs["whole"], tmp_path / "model.safetensors")
    loaded, nets = load_model(exported)
    assert loaded == load_config(str(path)) and nets["mapping"].skip is not None


def test_options_are_checked(pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="either pairs"):
        train(options(tmp_path, None, "vae-b"))
    with pytest.raises(TrainError, match="at least 12"):
        train(options(tmp_path, pairs, "vae-b", crop=8))
    with pytest.raises(TrainError, match="stage detector does not use it"):
        train(options(tmp_path, pairs, "detector", real_old=tmp_path))
    with pytest.raises(TrainError, match="neither a preset"):
        train(options(tmp_path, pairs, "vae-b", config="huge"))
    with pytest.raises(TrainError, match=r"saturation_jitter must be in \[0, 1\], got 2"):
        train(options(tmp_path, pairs, "vae-b", saturation_jitter=2.0))
    with pytest.raises(TrainError, match=r"contrast_jitter must be in \[0, 1\], got -0.1"):
        train(options(tmp_path, pairs, "vae-b", contrast_jitter=-0.1))
    with pytest.raises(TrainError, match=r"hue_jitter must be in \[0, 180\], got 181"):
        train(options(tmp_path, pairs, "vae-b", hue_jitter=181.0))
    with pytest.raises(TrainError, match="no-such-folder"):
        train(options(tmp_path, tmp_path / "no-such-folder", "vae-b"))


def test_learning_rate_is_constant_then_linear_to_zero() -> None:
    o = TrainOptions(stage="vae-b", out=Path("x"), steps=10, lr=1.0)
    assert [learning_rate(s, o) for s in range(10)] == [1.0] * 5 + [1.0, 0.8, 0.6, 0.4, 0.2]
    assert learning_rate(3, replace(o, decay_from=2)) == 0.875


def test_read_meta_gives_the_record_without_the_tensors(tmp_path: Path) -> None:
    save(tmp_path, 7, {"w": torch.ones(2)}, {"step": 7})
    assert read_meta(tmp_path) == ("checkpoint-00000007", {"step": 7})
    (tmp_path / "checkpoint-00000007.safetensors").unlink()  # the record alone still reads; the whole does not
    assert read_meta(tmp_path)[1] == {"step": 7}
    with pytest.raises(CheckpointError, match=r"checkpoint-00000007\.safetensors: missing checkpoint file"):
        read(tmp_path)
    with pytest.raises(CheckpointError, match=r"no checkpoint \(no 'latest' file\)"):
        read_meta(tmp_path / "empty")


def test_optimizer_state_round_trips_through_flat_tensors() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999))
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(4, 3)).square().sum().backward()
        optimizer.step()
    tensors, meta = flatten_optimizer("net", optimizer.state_dict())
    assert set(tensors) == {f"optimizer.net.{i}.{k}" for i in (0, 1) for k in ("exp_avg", "exp_avg_sq")}
    fresh = torch.optim.Adam(net.parameters())
    fresh.load_state_dict(unflatten_optimizer("net", tensors, json.loads(json.dumps(meta))))
    restored, original = fresh.state_dict(), optimizer.state_dict()
    assert restored["param_groups"][0]["lr"] == 1e-2 and list(restored["param_groups"][0]["betas"]) == [0.5, 0.999]
    for index, state in original["state"].items():
        for key, value in state.items():
            assert (
                torch.equal(restored["state"][index][key], value) and restored["state"][index][key].dtype == value.dtype
            )


DDP_SCRIPT = """
import sys
from pathlib import Path
from safetensors.torch import save_file
from restore.distributed import unwrap
from restore.train import Trainer, TrainOptions

out, pairs, photos = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
for stage in ("detector", "vae-a", "vae-b", "mapping"):  # one process group for all, as `restore train all`
    options = TrainOptions(stage=stage, out=out, config="tiny", pairs=pairs, steps=2, batch=2, crop=32,
                           checkpoint_every=1, validate_every=2, progress=False, device="cpu",
                           real_old=photos if stage == "vae-a" else None)
    trainer = Trainer(options)
    trainer.run()
    weights = {f"{name}.{key}": value.contiguous() for name, module in trainer.stage.modules.items()
               for key, value in unwrap(module).state_dict().items()}
    save_file(weights, str(out / f"{stage}-rank{trainer.context.rank}.safetensors"))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_train_in_step_under_torchrun(pairs: Path, photo_dir: Path, tmp_path: Path) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo backend")
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2"]
    command += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(script)]
    command += [str(tmp_path), str(pairs), str(photo_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("detector", "vae-a", "vae-b", "mapping"):
        rank0, rank1 = (load_file(tmp_path / f"{stage}-rank{r}.safetensors") for r in (0, 1))
        assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0), stage
        checkpoint = load_file(tmp_path / stage / "checkpoint-00000002.safetensors")
        assert all(torch.equal(checkpoint[k], v) for k, v in rank0.items())
        meta = json.loads((tmp_path / stage / "checkpoint-00000002.json").read_text())
        assert len(meta["rng"]) == 2 and meta["rng"][0] != meta["rng"][1]  # one RNG state per rank
        records = (tmp_path / stage / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in records] == [1, 2, 2]  # rank 0 alone writes


def test_loss_weights_without_gan_train_no_discriminator(run: tuple[Path, dict], pairs: Path, tmp_path: Path) -> None:
    out, _ = run
    plain = options(tmp_path, pairs, "mapping", vae_a=out / "vae-a", vae_b=out / "vae-b")
    no_gan = replace(plain, loss_weights=(("gan", 0.0), ("feature_matching", 0.0)))
    summary = train(no_gan)
    meta = json.loads(Path(summary["checkpoint"]).with_suffix(".json").read_text())
    assert meta["weights"]["gan"] == 0 and meta["weights"]["feature_matching"] == 0
    assert not any(key.startswith("discriminator") for key in load_file(summary["checkpoint"]))
    logged = [json.loads(line) for line in (tmp_path / "mapping" / "log.jsonl").read_text().splitlines()]
    assert {"latent", "l1", "ssim"} == set(next(r for r in logged if "losses" in r)["losses"])
    with pytest.raises(TrainError, match="other loss weights"):
        train(replace(plain, steps=3, resume=True))
    with pytest.raises(TrainError, match="loss weight 'vgg': unknown"):
        train(replace(plain, loss_weights=(("vgg", 1.0),)))
    with pytest.raises(TrainError, match="must not be negative"):
        train(replace(plain, loss_weights=(("l1", -1.0),)))


def test_frozen_stages_train_the_same_mapping_and_export_the_same_networks(
    run: tuple[Path, dict], pairs: Path, tmp_path: Path
) -> None:
    """tools/freeze_stage.py keeps a finished stage's network alone, for a run to go on in a later session."""
    spec = importlib.util.spec_from_file_location("freeze_stage", REPO / "tools" / "freeze_stage.py")
    freeze_stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(freeze_stage)
    out, _ = run
    runs = {"full": tmp_path / "full", "frozen": tmp_path / "frozen"}
    for stage in ("vae-a", "vae-b", "detector"):
        shutil.copytree(out / stage, runs["full"] / stage)
        frozen = load_file(freeze_stage.freeze(out / stage, runs["frozen"] / stage))
        assert frozen and not any(key.startswith(("optimizer.", "discriminator")) for key in frozen)
        assert len(frozen) < len(load_file(out / stage / "checkpoint-00000002.safetensors"))
    early = shutil.copytree(out / "vae-a", tmp_path / "early")
    (early / "latest").write_text("checkpoint-00000001\n")
    with pytest.raises(freeze_stage.checkpoint.CheckpointError, match="step 1 of 2, not finished"):
        freeze_stage.freeze(early, tmp_path / "early-frozen")
    for run_dir in runs.values():
        train(options(run_dir, pairs, "mapping"))
    a, b = (load_file(r / "mapping" / "checkpoint-00000002.safetensors") for r in runs.values())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    (_, full), (_, frozen) = (load_model(export(r, tmp_path / f"{r.name}.safetensors")) for r in runs.values())
    for name in full:
        x, y = full[name].state_dict(), frozen[name].state_dict()
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    # A frozen stage cannot train on: one line naming it, not a traceback from loading missing tensors.
    with pytest.raises(TrainError, match=r"vae-a/checkpoint-00000002: a frozen stage .* at step 2"):
        train(options(runs["frozen"], pairs, "vae-a", steps=3, resume=True))
    # `restore train all --resume` keeps the frozen stages and resumes the others where they are.
    args = ["train", "all", "--config", "tiny", "--pairs", str(pairs), "--out", str(runs["frozen"]), "--resume"]
    args += ["--steps", "2", "--batch", "4", "--crop", "32", "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for stage in ("vae-a", "vae-b", "detector"):
        assert f"{stage}: frozen at step 2 (tools/freeze_stage.py), kept as it is" in result.output
    assert "mapping: " in result.output and "mapping: frozen" not in result.output


def test_pick_mapping_checkpoint_exports_the_checkpoint_with_the_best_stop_set_gain(
    run: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Every mapping checkpoint is scored on the stop set; the best one (the later on a tie) is exported."""
    spec = importlib.util.spec_from_file_location("pick", REPO / "tools" / "pick_mapping_checkpoint.py")
    pick = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pick)
    out, _ = run
    assert pick.mapping_steps(out) == [1, 2]
    monkeypatch.setattr(pick, "stop_photos", lambda debs: {"coffee": small_photo("coffee", 64)})
    monkeypatch.setattr(sys, "argv", ["pick", str(out), "--out", str(tmp_path / "picked.safetensors")])
    pick.main()
    lines = capsys.readouterr().out.splitlines()
    gains = {int(line.split()[2].rstrip(":")): float(line.split()[5]) for line in lines[:2]}
    best = max(gains, key=lambda step: (gains[step], step))
    assert lines[2].startswith(f"picked step {best} ")
    picked = load_file(tmp_path / "picked.safetensors")
    keys = [k for k in picked if k.startswith("mapping.")]

    def same(step: int) -> bool:
        mapping = load_file(out / "mapping" / f"checkpoint-{step:08d}.safetensors")
        return all(torch.equal(picked[k].float(), mapping[k].half().float()) for k in keys)

    assert same(best) and not same(3 - best)
