"""Training checkpoints: tensors in safetensors, everything else in JSON, written atomically; never pickle.

A checkpoint of one stage is two files in the stage folder, plus a pointer:

- `checkpoint-00001000.safetensors`: module weights as `<module>.<state-dict key>` and optimizer moments as
  `optimizer.<module>.<parameter index>.<key>` (e.g. `optimizer.vae.3.exp_avg`);
- `checkpoint-00001000.json`: step, stage, configs, optimizer scalars (Adam's `step`) and hyperparameters,
  RNG states, data positions, the tail of the loss log;
- `latest`: the newest checkpoint's stem.

Each file goes to a temporary name and is renamed into place, tensors first and `latest` last, so a crash at
any moment leaves `latest` naming a complete checkpoint.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as encode_safetensors

from degrade.writer import atomic_write

LATEST = "latest"
FORMAT = "patina-train/1"
OPTIMIZER = "optimizer"


class CheckpointError(ValueError):
    """A missing or unreadable checkpoint; the message names the file or folder."""


def stem(step: int) -> str:
    return f"checkpoint-{step:08d}"


def save(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write checkpoint `step` into `folder` (tensors on any device; `meta` JSON-safe); returns the tensor file."""
    folder.mkdir(parents=True, exist_ok=True)
    name = stem(step)
    # Copies: safetensors refuses tensors that share memory, and the copy leaves the live ones untouched.
    cpu = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
    atomic_write(folder / f"{name}.safetensors", encode_safetensors(cpu, metadata={"format": FORMAT}))
    atomic_write(folder / f"{name}.json", (json.dumps(meta, indent=1) + "\n").encode())
    atomic_write(folder / LATEST, f"{name}\n".encode())
    return folder / f"{name}.safetensors"


def latest(folder: Path) -> str | None:
    """The stem `latest` names, or None when the folder holds no checkpoint."""
    pointer = folder / LATEST
    return pointer.read_text("utf-8").strip() if pointer.is_file() else None


def read_meta(folder: Path, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """(stem, meta) of checkpoint `name` in `folder`, by default the latest one, without loading its tensors."""
    name = name or latest(folder)
    if name is None:
        raise CheckpointError(f"{folder}: no checkpoint (no '{LATEST}' file)")
    meta_path = folder / f"{name}.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: missing checkpoint file")
    try:
        return name, json.loads(meta_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: not a checkpoint description ({exc})") from None


def read(folder: Path, name: str | None = None) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    """(stem, tensors on the CPU, meta) of checkpoint `name` in `folder`, by default the latest one."""
    name, meta = read_meta(folder, name)
    tensor_path = folder / f"{name}.safetensors"
    if not tensor_path.is_file():
        raise CheckpointError(f"{tensor_path}: missing checkpoint file")
    try:
        tensors = load_file(tensor_path)
    except SafetensorError as exc:
        raise CheckpointError(f"{tensor_path}: not a safetensors file ({exc})") from None
    return name, tensors, meta


def flatten_optimizer(name: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's `state_dict()` as (tensors named `optimizer.<name>.<index>.<key>`, JSON-safe rest).

    Tensors with at least one dimension go to the tensor file; 0-d tensors (Adam's `step`) and plain values
    go to JSON with their dtype, as do the parameter groups (learning rate, betas, ...)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and value.ndim:
                tensors[f"{OPTIMIZER}.{name}.{index}.{key}"] = value
            elif isinstance(value, torch.Tensor):
                scalars.setdefault(str(index), {})[key] = {"tensor": value.item(), "dtype": _dtype_name(value.dtype)}
            else:
                scalars.setdefault(str(index), {})[key] = {"value": value}
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The `state_dict()` that `flatten_optimizer(name, ...)` split, for `Optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {}
    for index, entries in meta["scalars"].items():
        for key, entry in entries.items():
            value = (
                torch.tensor(entry["tensor"], dtype=getattr(torch, entry["dtype"]))
                if "tensor" in entry
                else entry["value"]
            )
            state.setdefault(int(index), {})[key] = value
    prefix = f"{OPTIMIZER}.{name}."
    for full, value in tensors.items():
        if full.startswith(prefix):
            index, key = full.removeprefix(prefix).split(".", 1)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's torch (CPU and, on a GPU, that device's) and numpy global RNG states, JSON-safe."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": _encode(torch.get_rng_state().numpy().tobytes()),
        "numpy": {
            "kind": kind,
            "keys": _encode(keys.astype("<u4").tobytes()),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if device.type == "cuda":
        state["cuda"] = _encode(torch.cuda.get_rng_state(device).numpy().tobytes())
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(torch.frombuffer(bytearray(_decode(state["torch"])), dtype=torch.uint8))
    numpy = state["numpy"]
    keys = np.frombuffer(_decode(numpy["keys"]), dtype="<u4").astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(torch.frombuffer(bytearray(_decode(state["cuda"])), dtype=torch.uint8), device)
