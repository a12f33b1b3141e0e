"""Benchmark methods: built-ins on small real photos, the registry and entry points, and external commands."""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import small_photo

from degrade.bench.methods import (
    BUILTIN,
    OPTIONAL,
    Job,
    Method,
    Output,
    default_name,
    detect_damage,
    get_method,
    method_names,
)
from degrade.bench.metrics import image_scores, mask_scores

PYTHON = sys.executable
HAS_BM3D = importlib.util.find_spec("bm3d") is not None


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return small_photo("chelsea", 64)


@pytest.fixture(scope="module")
def noisy(clean) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.clip(np.rint(clean + rng.normal(0, 15, clean.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scratched(clean) -> tuple[np.ndarray, np.ndarray]:
    """The clean photo with a bright 1 px scratch and two dark specks, and their true mask."""
    mask = np.zeros(clean.shape[:2], bool)
    mask[40, 6:58] = True
    mask[10:12, 50:52] = mask[52:54, 20:22] = True
    image = clean.copy()
    image[40, 6:58] = 250
    image[10:12, 50:52] = image[52:54, 20:22] = 5
    return image, mask


def run_one(method: Method, image: np.ndarray, mask: np.ndarray | None = None):
    return next(method.restore_many([Job("k", image, mask)]))


# --- built-ins


def test_method_names_lists_every_builtin_and_bm3d_only_when_installed():
    names = method_names()
    assert names[: len(BUILTIN)] == list(BUILTIN)
    builtin = ("identity", "nlm", "tv", "wavelet", "telea", "ns", "biharmonic", "nlm+telea", "telea-detect")
    for name in builtin + ("nlm+telea-detect",):
        assert name in names
    assert ("bm3d" in names) == HAS_BM3D


def test_identity_returns_the_input_so_its_scores_are_the_input_scores(noisy, clean, scratched):
    result = run_one(get_method("identity"), noisy)
    assert result.error is None and np.array_equal(result.output.image, noisy)
    assert result.output.image is not noisy
    _, mask = scratched
    assert image_scores(result.output.image, clean, mask) == image_scores(noisy, clean, mask)


@pytest.mark.parametrize(
    "name",
    [
        "nlm",
        "tv",
        "wavelet",
        pytest.param("bm3d", marks=pytest.mark.skipif(not HAS_BM3D, reason="no bm3d")),
    ],
)
def test_denoisers_remove_noise_and_leave_a_noiseless_image_alone(name, noisy, clean):
    method = get_method(name)
    assert not method.oracle_mask and not method.predicts_mask
    result = run_one(method, noisy)
    assert result.error is None and result.output.mask is None and result.seconds >= 0
    assert image_scores(result.output.image, clean, None)["psnr"] > image_scores(noisy, clean, None)["psnr"] + 2
    flat = np.full((24, 24, 3), 90, np.uint8)
    assert np.array_equal(run_one(method, flat).output.image, flat)


@pytest.mark.parametrize("name", ["telea", "ns", "biharmonic", "nlm+telea"])
def test_oracle_inpainters_repair_the_masked_damage(name, scratched, clean):
    image, mask = scratched
    method = get_method(name)
    assert method.oracle_mask and not method.predicts_mask
    restored = run_one(method, image, mask).output.image
    before, after = image_scores(image, clean, mask), image_scores(restored, clean, mask)
    assert after["psnr_in"] > before["psnr_in"] + 10
    if name != "nlm+telea":  # pure inpainters touch only the mask
        assert np.array_equal(restored[~mask], image[~mask])
    failed = run_one(method, image, None)
    assert failed.output is None and "needs the suite's damage mask" in failed.error


def test_detector_finds_thin_bright_and_dark_damage_and_little_on_the_clean_photo(scratched, clean):
    image, mask = scratched
    found = detect_damage(image)
    assert found.dtype == bool and found.shape == mask.shape
    assert mask_scores(found, mask)["recall"] > 0.8
    assert detect_damage(clean).mean() < 0.02  # fur at this scale; busier small photos get more false alarms
    assert not detect_damage(np.full((40, 40, 3), 128, np.uint8)).any()


@pytest.mark.parametrize("name", ["telea-detect", "nlm+telea-detect"])
def test_detect_variants_return_the_mask_they_inpainted(name, scratched, clean):
    image, mask = scratched
    method = get_method(name)
    assert method.predicts_mask and not method.oracle_mask
    output = run_one(method, image).output
    assert np.array_equal(output.mask, detect_damage(image))
    assert image_scores(output.image, clean, mask)["psnr_in"] > image_scores(image, clean, mask)["psnr_in"] + 10


class Flaky(Method):
    """Fails in the ways a third-party method can: an exception, a wrong size, a missing predicted mask."""

    name, predicts_mask = "flaky", True

    def restore(self, image, mask):
        if image[0, 0, 0] == 1:
            raise ZeroDivisionError("division by zero\nin a second line")
        if image[0, 0, 0] == 2:
            return Output(image[:-1], np.zeros(image.shape[:2], bool))
        if image[0, 0, 0] == 3:
            return Output(image)
        return Output(image, np.ones(image.shape[:2], np.uint8))


def test_restore_many_records_each_failure_and_goes_on():
    images = [np.full((8, 8, 3), value, np.uint8) for value in (1, 2, 3, 4)]
    results = list(Flaky().restore_many([Job(str(i), image) for i, image in enumerate(images)]))
    assert [r.key for r in results] == ["0", "1", "2", "3"]
    assert results[0].error == "ZeroDivisionError: division by zero in a second line"
    assert "expected uint8 (8, 8, 3)" in results[1].error
    assert "predicted mask is None" in results[2].error
    assert results[3].error is None and results[3].output.mask.dtype == bool and results[3].output.mask.all()
    assert all(r.output is None for r in results[:3]) and all(r.seconds >= 0 for r in results)


def test_get_method_names_and_refuses_unknown_specs_and_bad_names():
    assert get_method("nlm").name == "nlm"
    assert get_method("nlm", name="nlm-strong").name == "nlm-strong"
    spec = f"cmd:{PYTHON} x.py {{input}} {{output}}"
    assert get_method(spec).name == default_name(spec) and default_name(spec).startswith("cmd-")
    with pytest.raises(ValueError, match=r"unknown method 'nope'; known: identity, nlm, .*cmd:<command line>"):
        get_method("nope")
    with pytest.raises(ValueError, match="names a folder"):
        get_method("nlm", name="../up")


# --- entry points, through a real dist-info folder on sys.path


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> Path:
    """An installed-looking distribution registering three patina.methods: good, broken import, bad factory."""
    (tmp_path / "patina_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            from degrade.bench.methods import Method, Output

            class Invert(Method):
                name = "invert"

                def restore(self, image, mask):
                    return Output(255 - image)

            def factory(**options):
                return Invert()

            def not_a_method():
                return "surprise"
            """
        )
    )
    info = tmp_path / "patina_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: patina-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[patina.methods]\n"
        "demo-invert = patina_demo_plugin:factory\n"
        "demo-broken = patina_demo_missing_module:factory\n"
        "demo-bad = patina_demo_plugin:not_a_method\n"
        "nlm = patina_demo_plugin:factory\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("patina_demo_plugin", None)


def test_entry_point_methods_are_listed_and_built(plugin, noisy):
    names = method_names()
    assert "demo-invert" in names and "demo-bad" in names
    assert "demo-broken" not in names
    assert names.count("nlm") == 1 and type(get_method("nlm")).__name__ == "Classical"  # built-ins win
    method = get_method("demo-invert")
    assert method.name == "demo-invert"
    assert np.array_equal(run_one(method, noisy).output.image, 255 - noisy)


def test_broken_entry_points_are_unavailable_with_a_reason(plugin):
    with pytest.raises(ValueError, match=r"'demo-broken' is unavailable: cannot load .*ModuleNotFoundError") as info:
        get_method("demo-broken")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"'demo-bad' is unavailable: .*returned str, not a Method"):
        get_method("demo-bad")


# --- cmd: and cmd-dir:


def script(folder: Path, name: str, body: str) -> str:
    """The command line (quoted: the folder name has a space) running a Python program with `body`."""
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return shlex.join([PYTHON, str(path)])


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, str]:
    """Command prefixes of tiny Python programs that behave well or badly."""
    root = tmp_path_factory.mktemp("scripts with space")
    return {
        "copy": script(root, "copy.py", "import shutil, sys\nshutil.copy(sys.argv[1], sys.argv[2])\n"),
        "masked": script(
            root,
            "masked.py",
            """
            import sys
            import numpy as np
            from PIL import Image
            image = np.array(Image.open(sys.argv[1]))
            image[np.array(Image.open(sys.argv[2])) > 0] = 0
            Image.fromarray(image).save(sys.argv[3])
            """,
        ),
        "fail": script(
            root, "fail.py", "import sys\nprint('working', file=sys.stderr)\nsys.exit('model weights missing')\n"
        ),
        "sleep": script(
            root,
            "sleep.py",
            """
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            open(sys.argv[1], "w").write(str(child.pid))
            time.sleep(60)
            """,
        ),
        "shrink": script(
            root,
            "shrink.py",
            "import sys\nfrom PIL import Image\nImage.open(sys.argv[1]).resize((5, 4)).save(sys.argv[2])\n",
        ),
        "nothing": script(root, "nothing.py", "pass\n"),
        "garbage": script(root, "garbage.py", "import sys\nopen(sys.argv[2], 'wb').write(b'not a png')\n"),
        "copy-dir": script(
            root,
            "copy_dir.py",
            """
            import shutil, sys
            from pathlib import Path
            for path in sorted(Path(sys.argv[1]).iterdir()):
                if "skip" not in path.name:
                    shutil.copy(path, Path(sys.argv[2]) / path.name)
            """,
        ),
    }


def test_cmd_runs_a_program_per_image(scripts, noisy):
    method = get_method("cmd:" + scripts["copy"] + " {input} {output}", name="copy", timeout=30)
    assert method.name == "copy" and not method.oracle_mask
    result = run_one(method, noisy)
    assert result.error is None and np.array_equal(result.output.image, noisy)


def test_cmd_with_mask_placeholder_gets_the_oracle_mask(scripts, scratched):
    image, mask = scratched
    method = get_method("cmd:" + scripts["masked"] + " {input} {mask} {output}", timeout=30)
    assert method.oracle_mask
    restored = run_one(method, image, mask).output.image
    assert (restored[mask] == 0).all() and np.array_equal(restored[~mask], image[~mask])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("fail", "exited with status 1: model weights missing"),
        ("shrink", "output image is 5x4, the input 96x64"),
        ("nothing", "the command wrote no output image output.png"),
        ("garbage", "unreadable output image output.png (not an image"),
    ],
)
def test_cmd_failures_are_one_line_errors(scripts, noisy, key, message):
    result = run_one(get_method("cmd:" + scripts[key] + " {input} {output}", timeout=30), noisy)
    assert result.output is None and result.error.startswith(message) and "\n" not in result.error


def test_cmd_timeout_kills_the_program_and_its_children(scripts, noisy, tmp_path):
    pid_file = tmp_path / "child.pid"
    method = get_method(f"cmd:{scripts['sleep']} {shlex.quote(str(pid_file))} {{input}} {{output}}", timeout=1)
    start = time.perf_counter()
    result = run_one(method, noisy)
    assert result.error == "timed out after 1 s (killed)"
    assert time.perf_counter() - start < 10
    child = int(pid_file.read_text())
    for _ in range(50):  # the killed child is reaped by init shortly after
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} of the timed-out command is still running")


def test_cmd_refuses_bad_command_lines():
    with pytest.raises(ValueError, match=r"must contain \{input\} and \{output\}"):
        get_method("cmd:python x.py {input}")
    with pytest.raises(ValueError, match="cannot parse"):
        get_method("cmd:python 'x.py {input} {output}")
    with pytest.raises(ValueError, match="positive"):
        get_method("cmd:x {input} {output}", timeout=0)
    result = run_one(get_method("cmd:/no/such/program {input} {output}"), np.zeros((4, 4, 3), np.uint8))
    assert result.error.startswith("cannot run '/no/such/program'")


def test_cmd_dir_runs_once_per_batch_and_fails_only_missing_outputs(scripts, noisy, clean):
    method = get_method("cmd-dir:" + scripts["copy-dir"] + " {input_dir} {output_dir}", name="copy-dir", timeout=30)
    assert not method.oracle_mask
    jobs = [Job("holes/1/a_r0", noisy), Job("holes/2/skip_r0", clean), Job("mixed/1/b_r0", clean)]
    results = {r.key: r for r in method.restore_many(jobs)}
    assert list(results) == ["holes/1/a_r0", "holes/2/skip_r0", "mixed/1/b_r0"]
    assert np.array_equal(results["holes/1/a_r0"].output.image, noisy)
    assert np.array_equal(results["mixed/1/b_r0"].output.image, clean)
    assert results["holes/2/skip_r0"].output is None
    assert results["holes/2/skip_r0"].error == "the command wrote no output image holes%2F2%2Fskip_r0.png"
    assert len({r.seconds for r in results.values()}) == 1  # the batch's time, shared
    assert np.array_equal(method.restore(clean, None).image, clean)


def test_cmd_dir_failure_fails_the_whole_batch(scripts, noisy):
    method = get_method("cmd-dir:" + scripts["fail"] + " {input_dir} {output_dir} {mask_dir}", timeout=30)
    assert method.oracle_mask
    mask = np.zeros(noisy.shape[:2], bool)
    results = list(method.restore_many([Job("a", noisy, mask), Job("b", noisy, mask), Job("c", noisy, None)]))
    assert [(r.key, r.error) for r in results] == [
        ("c", "the command asks for {mask_dir} but no damage mask was given"),
        ("a", "exited with status 1: model weights missing"),
        ("b", "exited with status 1: model weights missing"),
    ]


def test_an_optional_builtin_whose_package_is_missing_is_unlisted_and_unavailable(monkeypatch):
    monkeypatch.setitem(OPTIONAL, "needs-missing", ("patina_no_such_package", BUILTIN["identity"]))
    assert "needs-missing" not in method_names()
    with pytest.raises(ValueError, match=r"'needs-missing' is unavailable: package patina_no_such_package does not"):
        get_method("needs-missing")


@pytest.mark.parametrize("name", ["nlm", "tv", "wavelet"])
def test_denoisers_keep_a_gray_photo_gray_and_finite(name, clean):
    """Gray suite photos come as three equal channels; flat chroma must not break a denoiser's noise estimate."""
    gray = np.repeat(clean.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
    rng = np.random.default_rng(2)
    noisy_gray = np.clip(np.rint(gray + rng.normal(0, 15, gray.shape[:2])[..., None]), 0, 255).astype(np.uint8)
    result = run_one(get_method(name), noisy_gray)
    assert result.error is None
    out = result.output.image
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert image_scores(out, gray, None)["psnr"] > image_scores(noisy_gray, gray, None)["psnr"] + 2
