"""degrade-bench: make and verify frozen suites, run methods on them, report. Thin: parse, call the library, report."""

from __future__ import annotations

import os
from pathlib import Path

import click

from degrade.bench import runner
from degrade.bench.methods import get_method, method_names
from degrade.bench.report import ReportError, write_html, write_markdown
from degrade.bench.suite import SuiteError, builtin_suites, make_suite, open_suite, pixel_checksum, verify_suite
from degrade.cli import voc_options
from degrade.sources import ImageError, open_source

_CMD_PREFIXES = ("cmd:", "cmd-dir:")


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Benchmark restoration methods on frozen, checksummed suites of degraded photos.

    \b
    Examples:
      degrade-bench make --suite old-photo-v1 --src voc --voc-root ~/VOCdevkit --split val --out suite/
      degrade-bench verify suite/
      degrade-bench run suite/ --method identity --method nlm --method telea --out results/
      degrade-bench run suite/ --method "cmd:python my_method.py {input} {output}" --name mine --out results/
      degrade-bench report results/ --out report.html
    """


@main.command(short_help="Render a suite into a folder.")
@click.option("--suite", "definition", required=True, metavar="NAME|FILE.toml", help="A built-in suite or a TOML file.")
@click.option("--src", default="sample", metavar="voc|sample|FOLDER", help="Where the clean photos come from.")
@voc_options(split="val")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write the suite into."
)
@click.option(
    "--jobs",
    type=click.IntRange(min=0),
    default=1,
    help="Worker processes; 0 uses every core. The suite's bytes do not depend on it.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def make(
    definition: str,
    src: str,
    voc_root: Path | None,
    year: str,
    split: str,
    out: Path,
    jobs: int,
    quiet: bool,
) -> None:
    """Render a suite definition into a folder with a checksummed manifest (suite.json)."""
    if src == "voc" and voc_root is None:
        _fail("--src voc needs --voc-root (the VOCdevkit folder or its parent)")
    try:
        source = open_source(src, voc_root=voc_root, year=year, split=split)
        suite = make_suite(definition, source, out, jobs=jobs or os.cpu_count() or 1, progress=not quiet)
    except (SuiteError, ImageError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})")
    click.echo(f"suite {suite.name}: {len(suite.items)} images, checksum {suite.checksum} in {out}")
    click.echo(f"pixel checksum {suite.manifest['pixel_checksum']}")


@main.command(short_help="Check a suite folder against its checksums.")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option(
    "--expect",
    metavar="CHECKSUM",
    help="A cited checksum: the suite's file checksum (the same files) or its pixel checksum (the same pixels, "
    "whichever PNG encoder build wrote them).",
)
def verify(suite: Path, expect: str | None) -> None:
    """Recompute every checksum of SUITE: prints OK with the suite's name and checksum, or each problem (exit 1).

    With --expect, also check that SUITE is the cited one."""
    try:
        problems = verify_suite(suite)
        opened = None if problems else open_suite(suite)
    except SuiteError as exc:
        _fail(str(exc))
    if problems:
        for problem in problems:
            click.echo(problem)
        _fail(f"{suite}: {len(problems)} problem(s): not the exact suite its manifest describes")
    if expect is None or expect.lower() == opened.checksum:
        click.echo(f"OK {opened.name} {opened.checksum}")
        return
    try:  # a verified suite's recorded pixel checksum is its pixels'; older suites are decoded for it
        pixels = opened.manifest.get("pixel_checksum") or pixel_checksum(suite)
    except SuiteError as exc:
        _fail(str(exc))
    if expect.lower() == pixels:
        click.echo(f"OK {opened.name}: the same pixels as {expect} (this folder's file checksum is {opened.checksum})")
    else:
        _fail(f"{suite}: not the suite cited as {expect} (checksum {opened.checksum}, pixel checksum {pixels})")


def _names(specs: tuple[str, ...], names: tuple[str, ...]) -> list[str | None]:
    """Pair --name values with --method specs: one per method, or one per cmd:/cmd-dir: method in order."""
    if not names:
        return [None] * len(specs)
    if len(names) == len(specs):
        return list(names)
    commands = [i for i, spec in enumerate(specs) if spec.startswith(_CMD_PREFIXES)]
    if len(names) != len(commands):
        _fail(
            f"{len(names)} --name for {len(specs)} --method ({len(commands)} of them cmd:): "
            "give one --name per cmd: method, in order, or one per method"
        )
    paired: list[str | None] = [None] * len(specs)
    for index, name in zip(commands, names, strict=True):
        paired[index] = name
    return paired


@main.command(short_help="Run and score methods on a suite.")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option(
    "--method",
    "specs",
    multiple=True,
    required=True,
    metavar="SPEC",
    help="A method (see `degrade-bench methods`), 'cmd:PROGRAM {input} {output} [{mask}]' run per image or "
    "'cmd-dir:PROGRAM {input_dir} {output_dir} [{mask_dir}]' run per folder. Repeatable.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="Results name: one per cmd: method in order, or one per method. Repeatable.",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Results folder (one per suite)."
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0, help="Seconds per cmd: call.")
@click.option("--retry-failed", is_flag=True, help="Run the images that failed before again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run(
    suite: Path,
    specs: tuple[str, ...],
    names: tuple[str, ...],
    out: Path,
    timeout: float,
    retry_failed: bool,
    quiet: bool,
) -> None:
    """Run methods on every image of SUITE and score them; rerunning resumes, never redoing a finished image."""
    try:
        opened = open_suite(suite)
    except SuiteError as exc:
        _fail(str(exc))
    methods = []
    for spec, name in zip(specs, _names(specs, names), strict=True):
        try:
            methods.append(get_method(spec, name=name, timeout=timeout))
        except ValueError as exc:
            _fail(f"--method {spec}: {exc}")
    try:
        counts = runner.run(opened, methods, out, specs, retry_failed=retry_failed, progress=not quiet)
    except runner.RunError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})")
    for count in counts:
        click.echo(count.line())
    click.echo(f"summary: {out / 'summary.csv'}")


@main.command(short_help="Write the HTML report and Markdown leaderboard.")
@click.argument("results", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML page to write  [default: RESULTS/report.html]",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Markdown leaderboard to write  [default: leaderboard.md next to --out]",
)
@click.option(
    "--suite",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Suite folder for the image grids  [default: the folder the runs recorded]",
)
@click.option("--examples", type=click.IntRange(min=0), default=3, help="Example images per track.")
def report(results: Path, out: Path | None, markdown: Path | None, suite: Path | None, examples: int) -> None:
    """Write a self-contained HTML report and a Markdown leaderboard of a RESULTS folder."""
    out = out if out is not None else results / "report.html"
    markdown = markdown if markdown is not None else out.with_name("leaderboard.md")
    try:
        write_html(results, out, suite=suite, examples=examples)
        write_markdown(results, markdown)
    except ReportError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})")
    click.echo(f"report: {out}\nleaderboard: {markdown}")


@main.command(short_help="List method names.")
def methods() -> None:
    """List the methods --method accepts by name (built in and registered by installed packages)."""
    for name in method_names():
        click.echo(name)
    click.echo("cmd:COMMAND, cmd-dir:COMMAND  (any program; see degrade-bench run --help)")


@main.command(short_help="List built-in suites.")
def suites() -> None:
    """List the built-in suite definitions --suite accepts by name."""
    for name in builtin_suites():
        click.echo(name)
