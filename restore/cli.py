"""The `restore` command (click): restore photos, train the model stage by stage, export it as one file.
Thin: parse, call the library (`restore.run`, `restore.train`, `restore.export`), report; errors are one line."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from tqdm import tqdm

import restore.train as training
from restore import checkpoint
from restore.data import JITTER_LIMITS, DataError
from restore.export import ExportError, export, load_model, parameter_count
from restore.photos import PHOTO_SUFFIXES
from restore.pipeline import MAX_PIXELS, RestoreError, Restorer
from restore.run import Job, default_output, folder_jobs, restore_jobs
from restore.stages import STAGES
from restore.train import TrainError, TrainOptions

DEFAULTS = {f.name: f.default for f in fields(TrainOptions)}
# What the library raises for bad input (each a one-line message naming the file, folder or option).
ERRORS = (TrainError, DataError, ExportError)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _loss_weight(text: str) -> tuple[str, float]:
    """NAME=VALUE of --loss-weight; names are checked by restore.train.loss_weights."""
    name, sep, value = text.partition("=")
    try:
        return name.strip(), float(value if sep else "")
    except ValueError:
        raise click.ClickException(f"--loss-weight {text!r}: expected NAME=NUMBER, e.g. gan=0") from None


@click.group("restore", context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def cli() -> None:
    """Restore old photos with Patina's model (Wan et al., CVPR 2020); train it and export it.

    \b
    Restore (shipped weights):
      restore run old.jpg --out fixed.png
      restore run scans/ --out restored/
    \b
    Training stages, in order: vae-a (degraded and real old photos), vae-b (clean photos), mapping (VAE A's
    latents to VAE B's; needs both VAEs), detector (scratch masks). Each writes into OUT/STAGE.
    \b
    Training example:
      degrade-gen --src sample --out pairs/
      restore train all --config small --pairs pairs/ --out runs/x
      restore export runs/x --out model.safetensors
    """


@cli.command()
@click.argument("stage", type=click.Choice([*STAGES, "all"]))
@click.option(
    "--config",
    default=DEFAULTS["config"],
    metavar="tiny|small|paper|FILE",
    help="Network widths: a preset or a JSON/TOML config file.",
)
@click.option(
    "--pairs",
    type=click.Path(file_okay=False, path_type=Path),
    multiple=True,
    help="Training data: a degrade-gen output folder (either --format: folder or shards); repeat it to train "
    "on several folders as one.",
)
@click.option(
    "--online",
    metavar="sample|FOLDER",
    help="Training data degraded on the fly from clean photos (a folder, or the bundled sample photos).",
)
@click.option("--preset", default=DEFAULTS["preset"], metavar="NAME|FILE.toml", help="Degradation recipe for --online.")
@click.option(
    "--real-old",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of real old photos: VAE A's latent discriminator aligns them with the synthetic ones.",
)
@click.option(
    "--vae-a",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mapping stage: VAE A's stage folder [default: OUT/vae-a].",
)
@click.option(
    "--vae-b",
    type=click.Path(file_okay=False, path_type=Path),
    help="Mapping stage: VAE B's stage folder [default: OUT/vae-b].",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder; the stage writes into OUT/STAGE."
)
@click.option("--steps", type=click.IntRange(min=1), default=DEFAULTS["steps"], help="Training steps.")
@click.option(
    "--decay-from",
    type=click.IntRange(min=0),
    default=DEFAULTS["decay_from"],
    help="Step where the learning rate starts its linear decay to 0 [default: STEPS / 2].",
)
@click.option(
    "--until",
    type=click.IntRange(min=1),
    metavar="N",
    default=DEFAULTS["until"],
    help="Stop after step N of the STEPS schedule, with a checkpoint; --resume continues (training in chunks).",
)
@click.option("--batch", type=click.IntRange(min=1), default=DEFAULTS["batch"], help="Images per step.")
@click.option("--crop", type=click.IntRange(min=8), default=DEFAULTS["crop"], help="Square training crops of CROP px.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS["lr"], help="Adam learning rate.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=DEFAULTS["checkpoint_every"],
    help="Save a checkpoint every N steps and at the end (0: only at the end).",
)
@click.option(
    "--validate-every",
    type=click.IntRange(min=0),
    default=DEFAULTS["validate_every"],
    help="Validation metrics and a sample grid every N steps and at the end (0: only at the end).",
)
@click.option("--seed", type=int, default=DEFAULTS["seed"], help="Seeds every RNG (weights, data, noise).")
@click.option(
    "--workers", type=click.IntRange(min=0), default=DEFAULTS["workers"], help="Data-loading worker processes."
)
@click.option("--device", default=DEFAULTS["device"], metavar="auto|cpu|cuda|cuda:N", help="Where to train.")
@click.option("--resume", is_flag=True, help="Continue from the stage's latest checkpoint.")
@click.option(
    "--loss-weight",
    "loss_weights",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace a loss weight (restore.stages.Weights: l1, ssim, kl, gan, feature_matching, latent, ...); "
    "gan=0 with feature_matching=0 trains without a discriminator. Repeatable.",
)
@click.option(
    "--saturation-jitter",
    type=click.FloatRange(0, JITTER_LIMITS["saturation"]),
    metavar="X",
    default=DEFAULTS["saturation_jitter"],
    help="Scale the clean photos' chroma by a log-uniform factor in exp(+-X) (both sides of a pair), so "
    "the model cannot learn that clean means vivid.",
)
@click.option(
    "--contrast-jitter",
    type=click.FloatRange(0, JITTER_LIMITS["contrast"]),
    metavar="X",
    default=DEFAULTS["contrast_jitter"],
    help="Scale the clean photos' contrast about their mean luma by a log-uniform factor in exp(+-X) (both "
    "sides of a pair), so the model cannot learn that clean means contrasty.",
)
@click.option(
    "--hue-jitter",
    type=click.FloatRange(0, JITTER_LIMITS["hue"]),
    default=DEFAULTS["hue_jitter"],
    metavar="DEGREES",
    help="Turn the clean photos' chroma about their luma by a uniform angle in +-DEGREES (both sides of a "
    "pair), so the model cannot learn one colour correction for every photo.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def train(ctx: click.Context, stage: str, **params: Any) -> None:
    """Train one STAGE (vae-a, vae-b, mapping, detector) into OUT/STAGE, or `all` four in that order.

    `all` runs each stage with the same options (the same --steps, --batch, ...); --real-old reaches VAE
    A only and the mapping uses the VAEs just trained in OUT. With --resume each stage continues from its
    latest checkpoint (a finished one has nothing left to do; one not started yet starts); a resumed
    mapping keeps the VAE checkpoints it started from.

    \b
    Examples:
      restore train vae-a --config small --pairs pairs/ --real-old old-photos/ --out runs/x
      restore train mapping --config small --online sample --out runs/x --steps 2000
      restore train all --config tiny --online sample --out runs/try --steps 50 --batch 2 -q
      torchrun --nproc-per-node 2 -m restore.cli train vae-b --config paper --pairs pairs/ --out runs/p --device cuda
    """
    pairs, online, out = params.pop("pairs"), params.pop("online"), params.pop("out")
    if out is None:
        _fail("missing option --out: the run folder to train into")
    if bool(pairs) == (online is not None):
        _fail("give the training data as either --pairs DIR (degrade-gen output) or --online SRC")
    if online is None and ctx.get_parameter_source("preset") is not ParameterSource.DEFAULT:
        _fail("--preset is the degradation recipe of --online data; --pairs were degraded already")
    if params["real_old"] is not None and stage not in ("vae-a", "all"):
        _fail("--real-old feeds VAE A's latent discriminator: use it with `restore train vae-a` (or all)")
    for name in ("vae_a", "vae_b"):
        if params[name] is not None and stage != "mapping":
            _fail(f"--{name.replace('_', '-')} picks a VAE for the mapping stage: use it with `restore train mapping`")
    params.update(out=out, pairs=tuple(pairs) or None, online=None if online is None else Path(online))
    params["progress"] = not params.pop("quiet")
    params["loss_weights"] = tuple(_loss_weight(text) for text in params["loss_weights"])
    for name in STAGES if stage == "all" else (stage,):
        real_old = params["real_old"] if name == "vae-a" else None
        resume = params["resume"] and (stage != "all" or checkpoint.latest(out / name) is not None)
        if resume and stage == "all" and _frozen_step(out / name) == params["steps"]:
            click.echo(f"{name}: frozen at step {params['steps']} (tools/freeze_stage.py), kept as it is")
            continue
        options = TrainOptions(**{**params, "stage": name, "real_old": real_old, "resume": resume})
        try:
            summary = training.train(options)
        except ERRORS as exc:
            _fail(f"{name}: {exc}" if stage == "all" else str(exc))
        except OSError as exc:  # the run folder itself: permissions, a full disk
            _fail(f"{exc.filename or out}: {exc.strerror or exc}")
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one report for the whole job
            click.echo(f"{name}: {_describe(summary)}")


def _frozen_step(folder: Path) -> int | None:
    """The step of `folder`'s latest checkpoint when tools/freeze_stage.py kept it (network only), else None
    (also for an unreadable one: the trainer reports that, naming the file)."""
    try:
        _, meta = checkpoint.read_meta(folder)
    except checkpoint.CheckpointError:
        return None
    return meta["step"] if meta.get("frozen") else None


@cli.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="The model file to write (.safetensors).")
@click.option("--half", is_flag=True, help="Store the weights as float16: half the file, loaded back as float32.")
@click.option(
    "--mapping-step",
    type=click.IntRange(min=1),
    metavar="N",
    help="Export the mapping's checkpoint at step N instead of its latest (tools/pick_mapping_checkpoint.py).",
)
def export_command(run: Path, out: Path | None, half: bool, mapping_step: int | None) -> None:
    """Write the four trained networks of run folder RUN (their latest checkpoints) and their config
    into one safetensors file.

    \b
    Example:
      restore export runs/x --out model.safetensors
      restore export runs/x --out model.safetensors --mapping-step 750
    """
    if out is None:
        _fail("missing option --out: the model file to write")
    try:
        path = export(run, out, half=half, mapping_step=mapping_step)
        config, nets = load_model(path)  # read it back: what we report is what a user will load
    except ERRORS as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out}: {exc.strerror or exc}")
    size = path.stat().st_size / 2**20
    click.echo(f"wrote {path}: {config.name} config, {parameter_count(nets):,} parameters, {size:.1f} MiB")


@cli.command("run")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write: a .png file for one photo, a folder for a folder [default: beside SOURCE, -restored].",
)
@click.option(
    "--weights",
    default="patina-small",
    metavar="NAME|FILE",
    help="The shipped model by name, or a .safetensors file written by `restore export`.",
)
@click.option(
    "--scratches",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    help="auto: the detector decides whether the photo has scratches; on: always use its mask; off: no detector.",
)
@click.option(
    "--save-mask",
    type=click.Path(path_type=Path),
    help="Also write the damage mask the model used (a .png file, or a folder for a folder).",
)
@click.option("--device", default="auto", metavar="auto|cpu|cuda|cuda:N", help="Where to run.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=64 * 64),
    default=MAX_PIXELS,
    help="Larger photos run in tiles of about this many pixels (same result, bounded memory).",
)
@click.option("--overwrite", is_flag=True, help="Restore again photos whose output exists (a rerun skips them).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run_command(
    source: Path,
    out: Path | None,
    weights: str,
    scratches: str,
    save_mask: Path | None,
    device: str,
    max_pixels: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Restore SOURCE, a scanned photo or a folder of them (searched recursively), with the shipped model.

    Writes PNG, keeping names (and subfolders); grayscale photos stay grayscale. A photo that cannot be
    read is reported and the others go on; rerunning on a folder skips the photos already restored.

    \b
    Examples:
      restore run old.jpg                                # writes old-restored.png
      restore run scans/ --out restored/
      restore run old.jpg --out fixed.png --scratches on --save-mask mask.png --device cpu
    """
    out = out or default_output(source)
    if source.is_dir():
        if out.suffix.lower() == ".png" or out.is_file():
            _fail(f"{out}: SOURCE is a folder, so --out must be a folder")
        jobs = folder_jobs(source, out, save_mask)
        if not jobs:
            _fail(f"{source}: no photos found ({', '.join(PHOTO_SUFFIXES)})")
    else:
        if out.suffix.lower() != ".png":
            _fail(f"{out}: --out must be a .png file (restorations are written as PNG)")
        if save_mask is not None and save_mask.suffix.lower() != ".png":
            _fail(f"{save_mask}: --save-mask must be a .png file")
        jobs = [Job(source, out, save_mask)]
        overwrite = True  # one named file: the user asked for it
    try:
        restorer = Restorer.load(weights, device=device, max_pixels=max_pixels)
    except (RestoreError, ExportError) as exc:
        _fail(str(exc))
    with tqdm(total=len(jobs), unit="photo", disable=quiet or len(jobs) == 1) as bar:
        report = restore_jobs(restorer, jobs, scratches, overwrite, step=bar.update)  # type: ignore[arg-type]
    for message in report.warnings:
        click.echo(f"warning: {message}", err=True)
    for message in report.failed:
        click.echo(f"error: {message}", err=True)
    if len(jobs) == 1 and report.restored:
        click.echo(f"wrote {report.restored[0]}")
    else:
        click.echo(
            f"restored {len(report.restored)}, skipped {len(report.skipped)} (already done), "
            f"failed {len(report.failed)} -> {out}"
        )
    if report.failed:
        raise SystemExit(1)


def _describe(summary: dict[str, Any]) -> str:
    """`train`'s summary as one line: step, last losses, last validation metrics, speed, checkpoint."""
    parts = [f"step {summary['step']}"]
    for label, values in (("losses", summary.get("losses")), ("validation", summary.get("validation"))):
        if values:
            parts.append(f"{label} " + " ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if "seconds_per_step" in summary:
        parts.append(f"{summary['seconds_per_step']:.3g} s/step")
    return ", ".join(parts) + f" -> {summary['checkpoint']}"


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
