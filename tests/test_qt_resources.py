"""tools/qt_resources.py reads bundles made by Qt's own `rcc` (5.15.8, formats 1 to 3, in tests/data/qt).

The fixtures hold two files of ours, `/app/res/a.txt` (stored as it is) and `/app/res/up/b.txt` (which rcc
zlib-compresses), made with `rcc --binary --format-version N t.qrc`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "qt"
_spec = importlib.util.spec_from_file_location("qt_resources", ROOT / "tools" / "qt_resources.py")
qt_resources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qt_resources)

EXPECTED = {
    PurePosixPath("app/res/a.txt"): b"plain text, stored as it is\n",
    PurePosixPath("app/res/up/b.txt"): b"compressible " * 200 + b"\n",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_every_file_of_a_qt_bundle(version: int) -> None:
    blob = (FIXTURES / f"v{version}.rcc").read_bytes()
    assert dict(qt_resources.read_rcc(blob)) == EXPECTED


def test_entry_names_cannot_leave_the_folder() -> None:
    blob = (FIXTURES / "v2.rcc").read_bytes()
    escaping = blob.replace("up".encode("utf-16-be"), "..".encode("utf-16-be"))
    assert escaping != blob
    with pytest.raises(ValueError, match=r"bad\.rcc: entry 'app/res/\.\.' would leave"):
        list(qt_resources.read_rcc(escaping, "bad.rcc"))


def test_other_files_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"photo\.jpg: not a Qt resource bundle"):
        list(qt_resources.read_rcc(b"\xff\xd8\xff\xe0" + bytes(40), "photo.jpg"))


def test_a_directory_that_contains_itself_is_refused_by_name() -> None:
    """A crafted tree whose root lists itself as its child would otherwise be walked without end."""
    blob = bytearray((FIXTURES / "v2.rcc").read_bytes())
    tree = int.from_bytes(blob[8:12], "big")
    blob[tree + 10 : tree + 14] = (0).to_bytes(4, "big")  # the root's first child: the root itself
    with pytest.raises(ValueError, match=r"cyclic\.rcc: tree entry 0 is reached twice"):
        list(qt_resources.read_rcc(bytes(blob), "cyclic.rcc"))


def test_a_truncated_bundle_is_refused_by_name() -> None:
    blob = (FIXTURES / "v2.rcc").read_bytes()
    with pytest.raises(ValueError, match=r"short\.rcc: (truncated or corrupt|.* is truncated)"):
        list(qt_resources.read_rcc(blob[: len(blob) // 2], "short.rcc"))
