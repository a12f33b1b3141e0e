"""The package list in pyproject.toml is written by hand (the repo-root `assets/` folder installs as
`degrade.assets`), so a new subpackage that is not listed would be missing from wheels: catch that here."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("degrade", "restore")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"]["degrade.assets"] == "assets"
    assert (ROOT / "assets" / "__init__.py").is_file()
