"""The restorer as a degrade-bench method: found through its entry point, scored like any other method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from skimage import data  # noqa: E402

from degrade.bench.methods import Job, get_method, method_names  # noqa: E402
from restore.config import model_config  # noqa: E402
from restore.export import build_networks, save_model  # noqa: E402


def test_restore_is_registered_and_runs_with_given_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    config = model_config("tiny")
    weights = save_model(tmp_path / "tiny.safetensors", config, build_networks(config), {})
    monkeypatch.setenv("PATINA_WEIGHTS", str(weights))
    monkeypatch.setenv("PATINA_DEVICE", "cpu")
    assert "restore" in method_names()
    method = get_method("restore")
    assert method.name == "restore" and method.predicts_mask and not method.oracle_mask
    image = np.ascontiguousarray(data.chelsea()[:60, :90])
    [result] = method.restore_many([Job("mixed/1/chelsea_r0", image)])
    assert result.error is None, result.error
    assert result.output.image.shape == image.shape and result.output.image.dtype == np.uint8
    assert result.output.mask.shape == image.shape[:2] and result.output.mask.dtype == bool


def test_missing_weights_make_the_method_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATINA_WEIGHTS", str(tmp_path / "none.safetensors"))
    with pytest.raises(ValueError, match="unavailable.*none.safetensors"):
        get_method("restore")
