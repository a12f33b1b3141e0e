"""The `restore` command and the exported model file: option wiring into TrainOptions, one-line errors,
and a strict, bit-exact, pickle-free round trip of all four networks."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from degrade.dataset import Settings, generate
from degrade.presets import load_preset
from degrade.sources import open_source

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import restore.train as training  # noqa: E402
from restore.cli import STAGES, cli  # noqa: E402
from restore.config import model_config  # noqa: E402
from restore.export import FORMAT, ExportError, build_networks, load_model, save_model  # noqa: E402
from restore.export import STAGES as EXPORT_STAGES  # noqa: E402
from restore.train import TrainError, TrainOptions  # noqa: E402

TINY = model_config("tiny")


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[TrainOptions]:
    """Every TrainOptions the CLI hands to `restore.train.train` (which does no training here)."""
    seen: list[TrainOptions] = []

    def fake_train(options: TrainOptions) -> dict:
        seen.append(options)
        return {
            "stage": options.stage,
            "step": options.steps,
            "losses": {"l1": 0.125, "kl": 2.0},
            "validation": {"psnr": 21.456789},
            "checkpoint": str(options.out / options.stage / "checkpoint-00000007.safetensors"),
            "seconds_per_step": 0.5,
        }

    monkeypatch.setattr(training, "train", fake_train)
    return seen


def random_networks(seed: int = 0) -> dict[str, torch.nn.Module]:
    """Tiny networks with every tensor random (not the deterministic init), so equality means a real copy."""
    torch.manual_seed(seed)
    nets = build_networks(TINY)
    with torch.no_grad():
        for net in nets.values():
            for tensor in net.state_dict().values():
                tensor.copy_(torch.randn_like(tensor))
    return nets


def assert_same_networks(a: dict[str, torch.nn.Module], b: dict[str, torch.nn.Module]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        left, right = a[name].state_dict(), b[name].state_dict()
        assert left.keys() == right.keys()
        for key in left:
            assert left[key].dtype == right[key].dtype
            assert torch.equal(left[key], right[key]), f"{name}.{key} differs"


def test_help_lists_the_commands() -> None:
    code, output = run_cli("--help")
    assert code == 0
    assert output.startswith("Usage: restore ")
    commands = [line.split()[0] for line in output.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert commands == ["export", "run", "train"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "restore"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    result = subprocess.run([script, "export", "--help"], capture_output=True, text=True, check=True)
    assert "Usage: restore export" in result.stdout


@pytest.mark.parametrize("stage", STAGES)
def test_train_builds_the_options(stage: str, calls: list[TrainOptions], tmp_path: Path) -> None:
    extra = ["--real-old", tmp_path / "old"] if stage == "vae-a" else []
    if stage == "mapping":
        extra = ["--vae-a", tmp_path / "a", "--vae-b", tmp_path / "b"]
    code, output = run_cli(
        "train", stage, "--config", "tiny", "--pairs", tmp_path / "pairs", "--out", tmp_path / "run",
        "--steps", 7, "--decay-from", 3, "--batch", 2, "--crop", 64, "--lr", 1e-3, "--checkpoint-every", 5,
        "--validate-every", 4, "--seed", 9, "--workers", 1, "--device", "cpu", "--resume", "-q", *extra,
    )  # fmt: skip
    assert code == 0, output
    expected = TrainOptions(
        stage=stage,
        out=tmp_path / "run",
        config="tiny",
        pairs=(tmp_path / "pairs",),
        real_old=tmp_path / "old" if stage == "vae-a" else None,
        vae_a=tmp_path / "a" if stage == "mapping" else None,
        vae_b=tmp_path / "b" if stage == "mapping" else None,
        steps=7,
        decay_from=3,
        batch=2,
        crop=64,
        lr=1e-3,
        checkpoint_every=5,
        validate_every=4,
        seed=9,
        workers=1,
        device="cpu",
        resume=True,
        progress=False,
    )
    assert calls == [expected]
    checkpoint = tmp_path / "run" / stage / "checkpoint-00000007.safetensors"
    assert output == f"{stage}: step 7, losses l1 0.125 kl 2, validation psnr 21.46, 0.5 s/step -> {checkpoint}\n"


def test_train_takes_several_pairs_folders(calls: list[TrainOptions], tmp_path: Path) -> None:
    code, output = run_cli("train", "mapping", "--pairs", tmp_path / "a", "--pairs", tmp_path / "b", "--out", tmp_path)
    assert code == 0, output
    assert calls[0].pairs == (tmp_path / "a", tmp_path / "b")


def test_train_defaults_are_the_library_defaults(calls: list[TrainOptions], tmp_path: Path) -> None:
    code, output = run_cli("train", "vae-b", "--online", "sample", "--preset", "bopbtl", "--out", tmp_path)
    assert code == 0, output
    assert calls == [TrainOptions(stage="vae-b", out=tmp_path, online=Path("sample"), preset="bopbtl")]


def test_train_all_runs_the_four_stages_in_order(calls: list[TrainOptions], tmp_path: Path) -> None:
    code, output = run_cli(
        "train", "all", "--online", tmp_path, "--real-old", tmp_path / "old", "--out", tmp_path / "run", "--steps", 3
    )
    assert code == 0, output
    base = TrainOptions(stage="vae-a", out=tmp_path / "run", online=tmp_path, steps=3)
    assert calls == [
        replace(base, real_old=tmp_path / "old"),
        replace(base, stage="vae-b"),
        replace(base, stage="mapping"),
        replace(base, stage="detector"),
    ]
    assert [line.split(":")[0] for line in output.splitlines()] == list(STAGES)


def test_train_all_resumes_the_stages_that_started(calls: list[TrainOptions], tmp_path: Path) -> None:
    (tmp_path / "vae-a").mkdir()
    (tmp_path / "vae-a" / "latest").write_text("checkpoint-00000003\n")
    code, output = run_cli("train", "all", "--pairs", tmp_path, "--out", tmp_path, "--resume", "--validate-every", 0)
    assert code == 0, output
    assert [(o.stage, o.resume, o.validate_every) for o in calls] == [
        ("vae-a", True, 0),
        ("vae-b", False, 0),
        ("mapping", False, 0),
        ("detector", False, 0),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vae-a", "--out", "r"], "either --pairs DIR"),
        (["vae-a", "--pairs", "p", "--online", "sample", "--out", "r"], "either --pairs DIR"),
        (["vae-a", "--pairs", "p"], "missing option --out"),
        (["vae-b", "--pairs", "p", "--real-old", "o", "--out", "r"], "--real-old feeds VAE A"),
        (["vae-a", "--pairs", "p", "--vae-a", "a", "--out", "r"], "--vae-a picks a VAE for the mapping"),
        (["all", "--pairs", "p", "--vae-b", "b", "--out", "r"], "--vae-b picks a VAE for the mapping"),
        (["mapping", "--pairs", "p", "--preset", "bopbtl", "--out", "r"], "--preset is the degradation recipe"),
    ],
)
def test_train_refuses_bad_options_in_one_line(
    args: list[str], message: str, calls: list[TrainOptions], tmp_path: Path
) -> None:
    code, output = run_cli("train", *args)
    assert code == 1
    assert output.startswith("Error: ") and message in output and output.count("\n") == 1
    assert calls == []


def test_train_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing(options: TrainOptions) -> dict:
        if options.stage == "mapping":
            raise TrainError(f"{options.out / 'vae-a'}: no checkpoint")
        return {"step": 1, "checkpoint": "c"}

    monkeypatch.setattr(training, "train", failing)
    code, output = run_cli("train", "mapping", "--pairs", tmp_path, "--out", tmp_path)
    assert (code, output) == (1, f"Error: {tmp_path / 'vae-a'}: no checkpoint\n")
    code, output = run_cli("train", "all", "--pairs", tmp_path, "--out", tmp_path)
    assert code == 1
    assert output.splitlines() == [
        "vae-a: step 1 -> c",
        "vae-b: step 1 -> c",
        f"Error: mapping: {tmp_path / 'vae-a'}: no checkpoint",
    ]


def test_save_load_round_trip_is_bit_exact(tmp_path: Path) -> None:
    nets = random_networks()
    path = save_model(tmp_path / "sub" / "model.safetensors", TINY, nets, {"vae-a": "vae-a/checkpoint-00000002"})
    config, loaded = load_model(path)
    assert config == TINY
    assert_same_networks(nets, loaded)
    assert not any(net.training for net in loaded.values())
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temporary file left


def test_half_file_is_half_the_size_and_loads_as_float32(tmp_path: Path) -> None:
    nets = random_networks(2)
    full = save_model(tmp_path / "full.safetensors", TINY, nets, {})
    half = save_model(tmp_path / "half.safetensors", TINY, nets, {}, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    _, loaded = load_model(half)
    for name, net in loaded.items():
        for key, value in net.state_dict().items():
            original = nets[name].state_dict()[key]
            assert value.dtype == original.dtype
            torch.testing.assert_close(value, original, atol=1e-3, rtol=1e-3)


def test_loaded_networks_compute_the_same(tmp_path: Path) -> None:
    nets = random_networks(1)
    _, loaded = load_model(save_model(tmp_path / "m.safetensors", TINY, nets, {}))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:14, :] = 1
    with torch.no_grad():
        for group in (nets, loaded):
            for net in group.values():
                net.eval()
        expected = nets["vae_b"].decode(nets["mapping"](nets["vae_a"].encode(x), mask))
        got = loaded["vae_b"].decode(loaded["mapping"](loaded["vae_a"].encode(x), mask))
        assert torch.equal(expected, got)
        assert torch.equal(nets["detector"](x[:, :1]), loaded["detector"](x[:, :1]))


def test_save_refuses_networks_that_do_not_fit_the_config(tmp_path: Path) -> None:
    nets = build_networks(replace(TINY, vae=replace(TINY.vae, latent=4), mapping=replace(TINY.mapping, latent=4)))
    with pytest.raises(ExportError, match=r"vae_a\.encoder\..* has shape"):
        save_model(tmp_path / "m.safetensors", TINY, nets, {})
    with pytest.raises(ExportError, match="expected networks"):
        save_model(tmp_path / "m.safetensors", TINY, {"vae_a": nets["vae_a"]}, {})
    assert not (tmp_path / "m.safetensors").exists()


def rewrite(path: Path, drop: str | None = None, add: str | None = None, **metadata: str) -> Path:
    """A copy of model file `path` with one tensor dropped or added, or metadata entries replaced."""
    tensors = load_file(path)
    if drop:
        del tensors[drop]
    if add:
        tensors[add] = torch.zeros(2)
    with safe_open(path, framework="pt") as handle:
        meta = {**handle.metadata(), **metadata}
    target = path.with_name(f"edited-{path.name}")
    save_file(tensors, target, metadata=meta)
    return target


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return save_model(tmp_path / "model.safetensors", TINY, random_networks(), {})


def test_load_refuses_a_missing_tensor(model_file: Path) -> None:
    key = next(k for k in load_file(model_file) if k.startswith("mapping."))
    edited = rewrite(model_file, drop=key)
    with pytest.raises(ExportError, match=rf"{edited}: missing tensor {key}"):
        load_model(edited)


def test_load_refuses_an_unexpected_tensor(model_file: Path) -> None:
    with pytest.raises(ExportError, match="unexpected tensor detector.extra"):
        load_model(rewrite(model_file, add="detector.extra"))
    with pytest.raises(ExportError, match="unexpected tensor 'critic.w'"):
        load_model(rewrite(model_file, add="critic.w"))


def test_load_refuses_another_format_or_config(model_file: Path) -> None:
    with pytest.raises(ExportError, match=r"not a Patina restoration model \(format 'patina-train/1'"):
        load_model(rewrite(model_file, format="patina-train/1"))
    wider = json.dumps(replace(TINY, vae=replace(TINY.vae, base=12)).to_dict())
    with pytest.raises(ExportError, match=r"tensor vae_a\.encoder\.0\.0\.weight has shape \(8, 3, 7, 7\)"):
        load_model(rewrite(model_file, config=wider))
    with pytest.raises(ExportError, match="missing tensor vae_a.encoder"):
        load_model(rewrite(model_file, config=json.dumps(replace(TINY, vae=replace(TINY.vae, res_blocks=2)).to_dict())))
    with pytest.raises(ExportError, match="unusable model config"):
        load_model(rewrite(model_file, config='{"vae": {"depth": 3}}'))
    plain = model_file.with_name("plain.safetensors")
    save_file({"w": torch.zeros(1)}, plain)
    with pytest.raises(ExportError, match="no format tag"):
        load_model(plain)
    assert FORMAT == "patina-restore/1"


class Payload:
    """Unpickling this would create the marker file: the load must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_pickle_payloads_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickled = tmp_path / "model.safetensors"
    pickled.write_bytes(pickle.dumps({"vae_a.encoder.0.0.weight": Payload(marker)}))
    with pytest.raises(ExportError, match=rf"{pickled}: not a safetensors file"):
        load_model(pickled)
    torch_file = tmp_path / "torch.safetensors"
    torch.save({"payload": Payload(marker), **build_networks(TINY)["vae_a"].state_dict()}, torch_file)
    with pytest.raises(ExportError, match="not a safetensors file"):
        load_model(torch_file)
    assert not marker.exists()
    with pytest.raises(ExportError, match="cannot read"):
        load_model(tmp_path / "absent.safetensors")


def write_mapping_meta(run: Path, vaes: dict[str, str], **options: str) -> None:
    """The parts of the mapping checkpoint's description that export reads: which VAEs it was trained with."""
    meta = {"options": {"out": str(run), "vae_a": None, "vae_b": None, **options}, "vaes": vaes}
    (run / "mapping" / "checkpoint-00000002.json").write_text(json.dumps(meta))


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, object]:
    """`load_stage` over a fake run in tmp_path/run: networks from `random_networks(2)`, configs settable."""
    nets = random_networks(2)
    for stage in STAGES:
        (tmp_path / "run" / stage).mkdir(parents=True)
        (tmp_path / "run" / stage / "latest").write_text("checkpoint-00000002\n")
    write_mapping_meta(tmp_path / "run", {"vae-a": "checkpoint-00000002", "vae-b": "checkpoint-00000002"})
    state: dict[str, object] = {"nets": nets, "configs": dict.fromkeys(STAGES, TINY), "loaded": {}}
    keys = {"vae-a": ("vae", "vae_a"), "vae-b": ("vae", "vae_b"), "mapping": ("mapping",) * 2}
    keys["detector"] = ("detector",) * 2

    def load_stage(stage_dir: Path, device: str = "cpu", name: str | None = None) -> tuple:
        state["loaded"][stage_dir.name] = name
        key, net = keys[stage_dir.name]
        return state["configs"][stage_dir.name], {key: nets[net]}

    monkeypatch.setattr(training, "load_stage", load_stage)
    return state


def test_export_command_writes_a_loadable_file(stages: dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    code, output = run_cli("export", tmp_path / "run", "--out", out)
    assert code == 0, output
    assert output.startswith(f"wrote {out}: tiny config, ")
    config, loaded = load_model(out)
    assert config == TINY
    assert_same_networks(stages["nets"], loaded)
    with safe_open(out, framework="pt") as handle:
        assert json.loads(handle.metadata()["stages"]) == {s: f"{s}/checkpoint-00000002" for s in STAGES}


def test_export_takes_an_earlier_mapping_checkpoint(stages: dict[str, object], tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "model.safetensors"
    meta = (run / "mapping" / "checkpoint-00000002.json").read_text()
    (run / "mapping" / "checkpoint-00000001.json").write_text(meta)
    code, output = run_cli("export", run, "--out", out, "--mapping-step", 1)
    assert code == 0, output
    assert stages["loaded"] == {**{s: "checkpoint-00000002" for s in STAGES}, "mapping": "checkpoint-00000001"}
    with safe_open(out, framework="pt") as handle:
        assert json.loads(handle.metadata()["stages"])["mapping"] == "mapping/checkpoint-00000001"
    # A step with no checkpoint is named, and nothing is written.
    code, output = run_cli("export", run, "--out", tmp_path / "n.safetensors", "--mapping-step", 3)
    assert code == 1 and "mapping/checkpoint-00000003.json" in output and not (tmp_path / "n.safetensors").exists()


def test_export_names_the_missing_stage(stages: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "run" / "mapping" / "latest").unlink()
    code, output = run_cli("export", tmp_path / "run", "--out", tmp_path / "m.safetensors")
    assert code == 1 and output.count("\n") == 1
    assert output.startswith(f"Error: {tmp_path / 'run' / 'mapping'}: no trained mapping stage")
    code, output = run_cli("export", tmp_path / "nowhere", "--out", tmp_path / "m.safetensors")
    assert (code, output) == (1, f"Error: {tmp_path / 'nowhere'}: no such run folder\n")
    assert not (tmp_path / "m.safetensors").exists()


def test_export_refuses_stages_trained_with_different_configs(stages: dict[str, object], tmp_path: Path) -> None:
    stages["configs"]["detector"] = replace(TINY, detector=replace(TINY.detector, depth=3))
    code, output = run_cli("export", tmp_path / "run", "--out", tmp_path / "m.safetensors")
    assert code == 1
    assert f"{tmp_path / 'run' / 'detector'}: trained with a different config" in output
    assert "detector.depth: 2 != 3" in output


def test_export_refuses_a_mapping_trained_with_other_vaes(stages: dict[str, object], tmp_path: Path) -> None:
    run, out = tmp_path / "run", tmp_path / "m.safetensors"
    write_mapping_meta(run, {"vae-a": "checkpoint-00000002", "vae-b": "checkpoint-00000001"})
    code, output = run_cli("export", run, "--out", out)
    assert code == 1
    assert f"{run / 'mapping'}: trained against vae-b/checkpoint-00000001, but {run / 'vae-b'} now ends at" in output
    vaes = {"vae-a": "checkpoint-00000002", "vae-b": "checkpoint-00000002"}
    write_mapping_meta(run, vaes, vae_a=str(tmp_path / "other" / "vae-a"))
    code, output = run_cli("export", run, "--out", out)
    assert code == 1
    assert f"trained against the vae-a in {tmp_path / 'other' / 'vae-a'}, not this run's" in output
    write_mapping_meta(run, vaes, vae_a=str(run / "vae-a"))  # named explicitly, but this run's own
    assert run_cli("export", run, "--out", out)[0] == 0


def test_export_takes_a_run_composed_of_links_to_the_vaes_the_mapping_used(
    stages: dict[str, object], tmp_path: Path
) -> None:
    """A mapping trained in one run on the VAEs of another exports from a folder that links the two."""
    run, shared = tmp_path / "run", tmp_path / "shared"
    shared.mkdir()
    (run / "vae-a").rename(shared / "vae-a")
    (run / "vae-a").symlink_to(shared / "vae-a", target_is_directory=True)
    vaes = {"vae-a": "checkpoint-00000002", "vae-b": "checkpoint-00000002"}
    write_mapping_meta(run, vaes, out=str(tmp_path / "mapping-run"), vae_a=str(shared / "vae-a"))
    code, output = run_cli("export", run, "--out", tmp_path / "m.safetensors")
    assert code == 0, output
    (run / "vae-a").unlink()  # a folder of its own again: not the VAE the mapping was trained with
    (shared / "vae-a").rename(run / "vae-a")
    code, output = run_cli("export", run, "--out", tmp_path / "n.safetensors")
    assert code == 1 and f"trained against the vae-a in {shared / 'vae-a'}, not this run's" in output


def test_train_export_load_end_to_end(photo_dir: Path, tmp_path: Path) -> None:
    """The real training (2 steps a stage, tiny config) through the CLI, then export and load."""
    generate(
        open_source(str(photo_dir)), tmp_path / "pairs", Settings(json.dumps(load_preset("old-photo"))), progress=False
    )
    run = tmp_path / "run"
    code, output = run_cli(
        "train", "all", "--config", "tiny", "--pairs", tmp_path / "pairs", "--out", run, "--steps", 2, "--batch", 2,
        "--crop", 32, "--validate-every", 0, "--checkpoint-every", 0, "--device", "cpu", "-q",
    )  # fmt: skip
    assert code == 0, output
    assert [line.split(":")[0] for line in output.splitlines()] == list(STAGES)
    code, output = run_cli("export", run, "--out", tmp_path / "model.safetensors")
    assert code == 0, output
    config, nets = load_model(tmp_path / "model.safetensors")
    assert config == TINY
    for stage, (name, key) in EXPORT_STAGES.items():
        stage_config, trained = training.load_stage(run / stage)
        assert stage_config == TINY
        assert_same_networks({name: trained[key]}, {name: nets[name]})
