"""Command-line entry points (click). Thin: parse, call the library, report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import click
from click.core import ParameterSource

from degrade.cluster import ClusterError, dask_executor
from degrade.dataset import DatasetError, Executor, JoblibExecutor, Settings, generate
from degrade.presets import PresetError, builtin_presets, load_preset
from degrade.sources import DownloadError, ImageError, download_voc, open_source
from degrade.textures import TextureError, use_textures


def _fail(message: str) -> None:
    raise click.ClickException(message)


def voc_options(split: str) -> Callable[[Callable], Callable]:
    """--voc-root, --year and --split, shared by every command that reads `--src voc`."""

    def apply(command: Callable) -> Callable:
        for option in reversed(
            (
                click.option(
                    "--voc-root",
                    type=click.Path(file_okay=False, path_type=Path),
                    default=None,
                    help="VOCdevkit folder or its parent (for --src voc).",
                ),
                click.option("--year", type=click.Choice(["2007", "2012"]), default="2012", help="VOC year."),
                click.option("--split", default=split, help="VOC split (a file in ImageSets/Main): train, val, ..."),
            )
        ):
            command = option(command)
        return command

    return apply


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--src",
    default="sample",
    metavar="voc|sample|FOLDER",
    help=(
        "Where clean photos come from: Pascal VOC, the sample photos shipped with installed packages, "
        "or a folder (searched recursively)."
    ),
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; rerunning the same command resumes it.",
)
@click.option(
    "--preset",
    default="old-photo",
    metavar="NAME|FILE.toml",
    help=f"Degradation recipe: a built-in ({', '.join(builtin_presets())}) or a TOML file.",
)
@click.option(
    "--textures",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Your own textures for the preset's texture ops: a folder of PNG/JPEG/TIFF images, searched recursively, "
        "bright scratches on dark; files named paper_* are paper textures. An op whose kind the folder lacks "
        "keeps the bundled textures."
    ),
)
@click.option("--seed", type=int, default=0, help="Global seed; each sample derives its own stream from it.")
@click.option("--repeats", type=click.IntRange(min=1), default=1, help="Degraded versions per source image.")
@click.option(
    "--size",
    type=click.IntRange(min=8),
    default=None,
    help="Resize so the shorter side is SIZE px: area averaging down, bicubic up (default: keep).",
)
@click.option(
    "--crop",
    type=click.IntRange(min=8),
    default=None,
    help="Random square crop of CROP px after resizing (default: none).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Use only the first LIMIT source images (in sorted order).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=0),
    default=1,
    help="Worker processes on this machine (joblib, or a local Dask cluster); 0 uses every core. "
    "Output bytes do not depend on it.",
)
@click.option(
    "--backend",
    type=click.Choice(["joblib", "dask"]),
    default="joblib",
    help="What runs the workers: joblib processes, or Dask (a local cluster of --jobs workers, or the cluster "
    "at --scheduler; pip install patina-photo[cluster]). Output bytes do not depend on it.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="With --backend dask: a running cluster's scheduler, e.g. tcp://host:8786. Its workers write to --out "
    "themselves: --out and the source photos must be on storage they see at the same paths.",
)
@click.option(
    "--format",
    "layout",
    type=click.Choice(["folder", "shards"]),
    default="folder",
    help="folder: one PNG per image in clean/, degraded/, mask/, labels/; shards: WebDataset-style tar shards "
    "pairs-000000.tar, ... (docs/dataset-format.md).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=1000,
    help="Samples per shard, with --format shards.",
)
@voc_options(split="train")
@click.option(
    "--download",
    is_flag=True,
    help="Fetch and extract the official VOC archive into --voc-root first (resumable, checksummed).",
)
@click.option("--show-preset", is_flag=True, help="Print the resolved preset as JSON and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def gen(
    ctx: click.Context,
    src: str,
    out: Path | None,
    preset: str,
    textures: Path | None,
    seed: int,
    repeats: int,
    size: int | None,
    crop: int | None,
    limit: int | None,
    jobs: int,
    backend: str,
    scheduler: str | None,
    layout: str,
    shard_size: int,
    voc_root: Path | None,
    year: str,
    split: str,
    download: bool,
    show_preset: bool,
    quiet: bool,
) -> None:
    """Render paired (clean, degraded) training data with damage masks and a replayable record per sample.

    \b
    Examples:
      degrade-gen --src sample --out pairs/
      degrade-gen --src voc --voc-root ~/data/VOCdevkit --split train --out pairs/ --repeats 2 --jobs 2
      degrade-gen --src photos/ --out pairs/ --preset bopbtl --size 256 --crop 256
      degrade-gen --src photos/ --out /shared/pairs/ --backend dask --scheduler tcp://head:8786 --format shards
    """
    given = {name for name in ("jobs", "shard_size") if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if scheduler is not None and backend != "dask":
        _fail("--scheduler is the address of a Dask cluster: use it with --backend dask")
    if scheduler is not None and "jobs" in given:
        _fail("--jobs sets the workers of this machine; the cluster at --scheduler brings its own")
    if layout != "shards" and "shard_size" in given:
        _fail("--shard-size sets the samples per shard: use it with --format shards")
    try:
        resolved = load_preset(preset)
    except PresetError as exc:
        _fail(str(exc))
    if textures is not None:
        try:
            resolved = use_textures(resolved, textures)
        except TextureError as exc:
            _fail(f"--textures: {exc}")
    if show_preset:
        click.echo(json.dumps(resolved, indent=2))
        return
    if download:
        if src != "voc" or voc_root is None:
            _fail("--download fetches Pascal VOC: use it with --src voc --voc-root DIR")
        try:
            image_set = "test" if (year, split) == ("2007", "test") else "trainval"
            voc_root = download_voc(voc_root, year, image_set=image_set, progress=not quiet)
        except DownloadError as exc:
            _fail(str(exc))
        if out is None:
            click.echo(f"VOC {year} is ready in {voc_root}")
            return
    if out is None:
        _fail("missing option --out: the folder to write pairs into")
    if src == "voc" and voc_root is None:
        _fail("--src voc needs --voc-root (the VOCdevkit folder or its parent); add --download to fetch it")
    try:
        source = open_source(src, voc_root=voc_root, year=year, split=split)
    except (ImageError, ValueError, OSError) as exc:
        _fail(str(exc))
    settings = Settings(json.dumps(resolved), seed=seed, repeats=repeats, size=size, crop=crop)
    workers = jobs or os.cpu_count() or 1
    executor: AbstractContextManager[Executor] = (
        dask_executor(scheduler, workers) if backend == "dask" else nullcontext(JoblibExecutor(workers))
    )
    try:
        with executor as run:
            summary = generate(
                source,
                out,
                settings,
                limit=limit,
                progress=not quiet,
                executor=run,
                shard_size=shard_size if layout == "shards" else None,
            )
    except (DatasetError, ClusterError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the output folder itself: permissions, a full disk
        _fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})")
    click.echo(summary.line())
    if summary.written == 0 and summary.skipped == 0:
        _fail(f"no sample could be written: {summary.failed} input(s) failed, see {out / 'errors.jsonl'}")
