"""The Dask backend: a local cluster writes the bytes of `--jobs 1`, a killed run resumes on a cluster,
unusable clusters are one-line errors, and the local-cluster example in docs/scaling.md works."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from degrade import cluster
from degrade.cli import gen
from degrade.cluster import ClusterError, DaskExecutor, dask_executor
from degrade.dataset import Settings, generate
from degrade.presets import load_preset
from degrade.sources import open_source

ROOT = Path(__file__).resolve().parents[1]


def settings(**kw) -> Settings:
    return Settings(json.dumps(load_preset("old-photo")), **kw)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[DaskExecutor]:
    """Two single-threaded worker processes (processes, not threads: the claim is byte identity across them)."""
    with dask_executor(workers=2) as executor:
        yield executor


@pytest.mark.parametrize("shard_size", [None, 3])
def test_local_cluster_writes_the_bytes_of_one_job(
    local_cluster: DaskExecutor, photo_dir: Path, tmp_path: Path, shard_size: int | None
) -> None:
    assert local_cluster.workers == 2 and len(local_cluster.client.nthreads()) == 2
    source, same = open_source(str(photo_dir)), settings(seed=7, repeats=2)
    generate(source, tmp_path / "one", same, jobs=1, progress=False, shard_size=shard_size)
    summary = generate(source, tmp_path / "dask", same, executor=local_cluster, progress=False, shard_size=shard_size)
    assert (summary.written, summary.failed) == (10, 0)
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "one")


@pytest.mark.slow
def test_killed_run_resumes_on_the_cluster(local_cluster: DaskExecutor, photo_dir: Path, tmp_path: Path) -> None:
    """SIGKILL a `--backend dask` run (client, nannies and workers) part-way; rerun on a cluster; compare."""
    args = ["--src", str(photo_dir), "--repeats", "30", "--size", "96", "--seed", "3", "--format", "shards"]
    args += ["--shard-size", "16", "-q"]
    reference = tmp_path / "ref"
    generate(
        open_source(str(photo_dir)), reference, settings(seed=3, repeats=30, size=96), shard_size=16, progress=False
    )
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from degrade.cli import gen; gen()", *args, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "--backend", "dask", "--jobs", "2"], env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        index = out / "shards.jsonl"
        if index.exists() and index.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not json.loads((out / "dataset.json").read_text())["complete"], "the run finished before it was killed"
    address = local_cluster.client.scheduler.address
    result = CliRunner().invoke(gen, [*args, "--out", str(out), "--backend", "dask", "--scheduler", address])
    assert result.exit_code == 0, result.output
    assert tree_bytes(out) == tree_bytes(reference)


def test_unusable_dask_backends_are_one_line_errors(
    photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    base = ["--src", str(photo_dir), "--out", str(tmp_path / "o"), "-q"]
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 0.5)
    cases = {
        ("--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"): "--scheduler tcp://127.0.0.1:9: cannot reach",
        ("--scheduler", "tcp://127.0.0.1:9"): "use it with --backend dask",
        ("--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--jobs", "2"): "brings its own",
    }
    for args, message in cases.items():
        result = runner.invoke(gen, [*base, *args])
        assert result.exit_code != 0, args
        assert message in result.output and result.output.strip().count("\n") == 0, (args, result.output)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the cluster extra were not installed
    result = runner.invoke(gen, [*base, "--backend", "dask"])
    assert result.exit_code != 0
    assert result.output.strip() == "Error: --backend dask needs the cluster extra: pip install patina-photo[cluster]"


class _Client:
    """A cluster whose one worker has another NumPy (two versions cannot be installed side by side here)."""

    def nthreads(self) -> dict[str, int]:
        return {"tcp://10.0.0.5:40000": 1}

    def run(self, fn: Callable[[], dict[str, str]]) -> dict[str, dict[str, str]]:
        return {"tcp://10.0.0.5:40000": {**fn(), "numpy": "1.0.0"}}


def test_workers_with_other_versions_are_refused() -> None:
    with pytest.raises(
        ClusterError, match=r"worker tcp://10.0.0.5:40000 has numpy 1.0.0 \(here .*\): .*byte-identical"
    ):
        cluster._check_workers(_Client(), "tcp://head:8786")


def test_documented_local_cluster_example(photo_dir: Path, tmp_path: Path) -> None:
    """The example in docs/scaling.md, on the test photos: same bytes as one local job."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    line = next(s for s in text.splitlines() if s.startswith("degrade-gen ") and "--backend dask" in s)
    args = shlex.split(line.split("#")[0])[1:]
    assert "--scheduler" not in args and args[args.index("--src") + 1] == "sample"
    args[args.index("--src") + 1], args[args.index("--out") + 1] = str(photo_dir), str(tmp_path / "dask")
    result = CliRunner().invoke(gen, [*args, "-q"])
    assert result.exit_code == 0, result.output
    args[args.index("--out") + 1] = str(tmp_path / "one")
    args = [a for a in args if a not in ("--backend", "dask")]
    assert CliRunner().invoke(gen, [*args, "-q", "--jobs", "1"]).exit_code == 0
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "one")
