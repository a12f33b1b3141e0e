"""External programs as methods: any restorer that reads and writes image files can be benchmarked.

``cmd:<command line>`` runs the program once per image with the placeholders ``{input}`` (an RGB PNG),
``{output}`` (the PNG path it must write, same size) and, optionally, ``{mask}`` (the suite's damage mask, 8-bit
PNG, 255 = damage; asking for it makes the method an oracle-mask method, flagged in results).

``cmd-dir:<command line>`` runs it once per batch with ``{input_dir}``, ``{output_dir}`` and optionally
``{mask_dir}``: every input is a PNG in input_dir, its mask the same name in mask_dir, and the program writes an
output of the same name in output_dir. A missing or bad output fails that image only; the time is shared equally.

The command line is split like a POSIX shell would (`shlex`), then placeholders are replaced inside each argument,
so paths stay single arguments whatever characters they hold; no shell runs it (use ``sh -c '...'`` for pipes).
Files live in a private temporary folder removed afterwards. The program runs in the current folder, in its own
process group: on timeout (per image; a batch gets the timeout times its size) the whole group is killed. Its
standard output is discarded; when it fails, the last line of its standard error is the error recorded.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np

from degrade.bench.methods import Job, Method, MethodError, Output, Result, error_line
from degrade.sources import ImageError, load_image
from degrade.writer import encode_png

_MAX_STDERR = 200


def command_method(spec: str, timeout: float) -> Method:
    """The method for a ``cmd:`` or ``cmd-dir:`` spec; ValueError (one line) for a bad command line or timeout."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    kind, _, template = spec.partition(":")
    return (CommandMethod if kind == "cmd" else FolderCommandMethod)(template, timeout)


def parse(template: str, required: tuple[str, ...]) -> list[str]:
    """The command line as arguments; it must name every `required` placeholder."""
    try:
        args = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"cannot parse command line {template!r} ({exc})") from None
    missing = [p for p in required if not any(p in arg for arg in args)]
    if not args or missing:
        raise ValueError(f"command line {template!r} must contain {' and '.join(required)}")
    return args


def substitute(args: list[str], values: dict[str, Path]) -> list[str]:
    """Each argument with its placeholders replaced by paths."""
    out = []
    for arg in args:
        for placeholder, path in values.items():
            arg = arg.replace(placeholder, str(path))
        out.append(arg)
    return out


def last_line(data: bytes) -> str:
    """The last non-blank line of a program's stderr, shortened: usually the error that stopped it."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= _MAX_STDERR else text[: _MAX_STDERR - 3] + "..."


def run(args: list[str], timeout: float) -> None:
    """Run a program without a shell; MethodError if it cannot start, times out, or exits nonzero."""
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:  # not found, not executable
        raise MethodError(f"cannot run {args[0]!r} ({exc.strerror or exc})") from None
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Its own session, so the group holds the program and whatever it started; none of them outlives the image.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        process.stderr.close()  # not read again: a child that left the group may still hold it open
        raise MethodError(f"timed out after {timeout:g} s (killed)") from None
    if process.returncode:
        code = process.returncode
        status = f"killed by signal {-code} ({signal.strsignal(-code)})" if code < 0 else f"exited with status {code}"
        detail = last_line(stderr)
        raise MethodError(f"{status}: {detail}" if detail else status)


def read_output(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The program's output as uint8 RGB of the input's `shape`, or a MethodError saying what is wrong with it."""
    if not path.is_file():
        raise MethodError(f"the command wrote no output image {path.name}")
    try:
        image, _ = load_image(path)
    except ImageError as exc:
        raise MethodError(f"unreadable output image {path.name} ({exc.reason or exc})") from None
    if image.shape != shape:
        raise MethodError(f"output image is {image.shape[1]}x{image.shape[0]}, the input {shape[1]}x{shape[0]}")
    return image


def mask_png(mask: np.ndarray) -> bytes:
    return encode_png(np.where(mask > 0, np.uint8(255), np.uint8(0)))


class CommandMethod(Method):
    """``cmd:``: one run of the program per image."""

    def __init__(self, template: str, timeout: float) -> None:
        self.args = parse(template, ("{input}", "{output}"))
        self.timeout = timeout
        self.oracle_mask = any("{mask}" in arg for arg in self.args)

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        if self.oracle_mask and mask is None:
            raise MethodError("the command asks for {mask} but no damage mask was given")
        with tempfile.TemporaryDirectory(prefix="patina-cmd-") as tmp:
            folder = Path(tmp)
            paths = {"{input}": folder / "input.png", "{output}": folder / "output.png", "{mask}": folder / "mask.png"}
            paths["{input}"].write_bytes(encode_png(image))
            if self.oracle_mask:
                paths["{mask}"].write_bytes(mask_png(mask))
            run(substitute(self.args, paths), self.timeout)
            return Output(read_output(paths["{output}"], image.shape))


def file_name(key: str) -> str:
    """A flat, unique PNG name for a job key (``scratches/2/x`` -> ``scratches%2F2%2Fx.png``; quoting is reversible)."""
    return quote(key, safe="") + ".png"


class FolderCommandMethod(Method):
    """``cmd-dir:``: one run of the program per batch of images, folder in, folder out."""

    def __init__(self, template: str, timeout: float) -> None:
        self.args = parse(template, ("{input_dir}", "{output_dir}"))
        self.timeout = timeout
        self.oracle_mask = any("{mask_dir}" in arg for arg in self.args)

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        result = next(self.restore_many([Job("image", image, mask)]))
        if result.output is None:
            raise MethodError(result.error)
        return result.output

    def restore_many(self, jobs: Iterable[Job]) -> Iterator[Result]:
        """Write every input, run the program once, then read each output; seconds are the batch's time / n."""
        start = time.perf_counter()
        ready, failed = [], []
        for job in jobs:
            if self.oracle_mask and job.mask is None:
                failed.append(
                    Result(job.key, None, 0.0, "the command asks for {mask_dir} but no damage mask was given")
                )
            else:
                ready.append(job)
        yield from failed
        if not ready:
            return
        with tempfile.TemporaryDirectory(prefix="patina-cmd-dir-") as tmp:
            root = Path(tmp)
            dirs = {"{input_dir}": root / "input", "{output_dir}": root / "output", "{mask_dir}": root / "mask"}
            for folder in dirs.values():
                folder.mkdir()
            for job in ready:
                (dirs["{input_dir}"] / file_name(job.key)).write_bytes(encode_png(job.image))
                if self.oracle_mask:
                    (dirs["{mask_dir}"] / file_name(job.key)).write_bytes(mask_png(job.mask))
            try:
                run(substitute(self.args, dirs), self.timeout * len(ready))
                batch_error = None
            except MethodError as exc:  # the program failed as a whole: no output of it can be trusted
                batch_error = error_line(exc)
            outputs: list[tuple[Output | None, str | None]] = []
            for job in ready:
                if batch_error is not None:
                    outputs.append((None, batch_error))
                    continue
                try:
                    outputs.append(
                        (Output(read_output(dirs["{output_dir}"] / file_name(job.key), job.image.shape)), None)
                    )
                except MethodError as exc:
                    outputs.append((None, error_line(exc)))
        seconds = (time.perf_counter() - start) / len(ready)
        for job, (output, error) in zip(ready, outputs, strict=True):
            yield Result(job.key, output, seconds, error)
