"""Presets: TOML recipes that say which ops run, in what order, how often and with what ranges.

A preset has a `target` stage (ops applied to the clean image too, e.g. converting a
black-and-white original to grayscale) and named `stages` applied in file order to make
the degraded image. Each stage holds `ops`, a table of entries keyed by a label:

    [stages.scan.ops.grain]      # label "grain"
    op = "film_grain"            # defaults to the label
    p = 0.75                     # probability the entry fires (default 1)
    when = "color"               # "any" (default), "gray" or "color": the target's kind
    amount = [0.01, 0.04]        # op config, validated against the op's defaults

or, for a choice between ops, `one_of` sub-tables keyed by op name, each with an
optional `weight`. A stage with `shuffle = true` runs its entries in random order.

A user file may start with `base = "old-photo"` and override any field; fields it does
not name keep the base's values. Unknown keys are an error that names the key.

A preset with structured damage documents `mask_coverage = [lo, hi]`: the range the mean
fraction of masked pixels falls in over many samples (tests hold the built-in presets to it).
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from degrade.ops import OPS

PRESET_KEYS = {"name", "description", "base", "mask_coverage", "target", "stages"}
ENTRY_KEYS = {"op", "p", "when", "one_of"}
CHOICE_KEYS = {"op", "weight"}
WHEN = ("any", "gray", "color")


class PresetError(ValueError):
    """A preset that cannot be used; the message names the preset and the offending key."""


def builtin_presets() -> list[str]:
    """Names of the presets shipped in the package."""
    return sorted(p.name[: -len(".toml")] for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def _read_builtin(name: str) -> dict[str, Any]:
    if name not in builtin_presets():
        raise PresetError(f"unknown preset {name!r} (built in: {', '.join(builtin_presets())}; or give a .toml file)")
    return tomllib.loads(resources.files(__name__).joinpath(f"{name}.toml").read_text("utf-8"))


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: preset file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{path}: not valid TOML ({exc})") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, any other value replaces the base's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _op_config(where: str, op_name: str, given: dict[str, Any], reserved: set[str]) -> dict[str, Any]:
    """The op's full config: its defaults overridden by the preset's values, unknown keys refused."""
    if op_name not in OPS:
        raise PresetError(f"{where}: unknown op {op_name!r} (known: {', '.join(sorted(OPS))})")
    defaults = OPS[op_name].defaults
    for key in given:
        if key not in defaults and key not in reserved:
            known = ", ".join(sorted(set(defaults) | reserved))
            raise PresetError(f"{where}: unknown key {key!r} for op {op_name!r} (known: {known})")
    config = {key: copy.deepcopy(value) for key, value in defaults.items()}
    config.update({key: value for key, value in given.items() if key not in reserved})
    return config


def _resolve_entry(where: str, label: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise PresetError(f"{where}: expected a table, got {entry!r}")
    p = entry.get("p", 1.0)
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise PresetError(f"{where}: p must be a number in [0, 1], got {p!r}")
    when = entry.get("when", "any")
    if when not in WHEN:
        raise PresetError(f"{where}: when must be one of {', '.join(WHEN)}, got {when!r}")
    resolved: dict[str, Any] = {"p": float(p), "when": when}
    if "one_of" in entry:
        extra = set(entry) - {"p", "when", "one_of"}
        if extra:
            raise PresetError(f"{where}: unknown key {sorted(extra)[0]!r} beside one_of (allowed: p, when, one_of)")
        choices = entry["one_of"]
        if not isinstance(choices, dict) or not choices:
            raise PresetError(f"{where}.one_of: expected a non-empty table of ops")
        resolved["one_of"] = {}
        for name, choice in choices.items():
            if not isinstance(choice, dict):
                raise PresetError(f"{where}.one_of.{name}: expected a table, got {choice!r}")
            op_name = choice.get("op", name)
            weight = choice.get("weight", 1.0)
            if not isinstance(weight, (int, float)) or weight <= 0:
                raise PresetError(f"{where}.one_of.{name}: weight must be a positive number, got {weight!r}")
            config = _op_config(f"{where}.one_of.{name}", op_name, choice, CHOICE_KEYS)
            resolved["one_of"][name] = {"op": op_name, "weight": float(weight), "config": config}
    else:
        op_name = entry.get("op", label)
        resolved["op"] = op_name
        resolved["config"] = _op_config(where, op_name, entry, ENTRY_KEYS)
    return resolved


def _resolve_stage(where: str, stage: Any) -> dict[str, Any]:
    if not isinstance(stage, dict):
        raise PresetError(f"{where}: expected a table, got {stage!r}")
    extra = set(stage) - {"shuffle", "ops"}
    if extra:
        raise PresetError(f"{where}: unknown key {sorted(extra)[0]!r} (a stage has: shuffle, ops)")
    shuffle = stage.get("shuffle", False)
    if not isinstance(shuffle, bool):
        raise PresetError(f"{where}: shuffle must be true or false, got {shuffle!r}")
    ops = stage.get("ops", {})
    if not isinstance(ops, dict):
        raise PresetError(f"{where}.ops: expected a table of op entries")
    return {
        "shuffle": shuffle,
        "ops": {label: _resolve_entry(f"{where}.ops.{label}", label, entry) for label, entry in ops.items()},
    }


def resolve(raw: dict[str, Any], origin: str) -> dict[str, Any]:
    """Validate a raw preset table and fill in every op's defaults; `origin` names it in errors."""
    extra = set(raw) - PRESET_KEYS
    if extra:
        known = ", ".join(sorted(PRESET_KEYS))
        raise PresetError(f"preset {origin}: unknown key {sorted(extra)[0]!r} (a preset has: {known})")
    stages = raw.get("stages", {})
    if not isinstance(stages, dict):
        raise PresetError(f"preset {origin}: stages must be a table of stages")
    coverage = raw.get("mask_coverage", [0.0, 0.0])
    if (
        not isinstance(coverage, list)
        or len(coverage) != 2
        or not all(isinstance(v, (int, float)) for v in coverage)
        or not 0.0 <= coverage[0] <= coverage[1] <= 1.0
    ):
        raise PresetError(f"preset {origin}: mask_coverage must be [lo, hi] with 0 <= lo <= hi <= 1, got {coverage!r}")
    return {
        "name": str(raw.get("name", origin)),
        "description": str(raw.get("description", "")),
        "mask_coverage": [float(v) for v in coverage],
        "target": _resolve_stage(f"preset {origin}: target", raw.get("target", {})),
        "stages": {name: _resolve_stage(f"preset {origin}: stages.{name}", stage) for name, stage in stages.items()},
    }


def load_preset(spec: str | Path) -> dict[str, Any]:
    """A resolved preset from a built-in name or a TOML file (which may extend a built-in via `base`)."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        raw = _read_file(path)
        origin = str(path)
    else:
        raw = _read_builtin(str(spec))
        origin = str(spec)
    base, named = raw.get("base"), "name" in raw
    raw = with_base(raw, origin)
    if base is not None and not named:
        raw["name"] = f"{base}+{path.stem}"
    return resolve(raw, origin)


def with_base(raw: dict[str, Any], origin: str) -> dict[str, Any]:
    """`raw` merged over the built-in preset its `base` key names (consumed); `raw` itself when it has none."""
    raw = dict(raw)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise PresetError(f"preset {origin}: base must be the name of a built-in preset")
    return _merge(_read_builtin(base), raw)
