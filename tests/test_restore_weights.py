"""The shipped weights (`restore/weights/patina-small.safetensors`): they load under the `small` config and
restore the held-out `chelsea` (the one sample photo no training run saw), damaged by `old-photo` at seeds
0-3, better than its input by MARGIN dB on average, while the same networks with random weights do not.

The measure is tools/make_restore_images.py's (the model card's before/after picture): `Restorer.restore`
with its defaults, as `restore run` does, PSNR against the clean photo, every seed, none picked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skimage import data  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from degrade import Degrader  # noqa: E402
from restore.config import model_config  # noqa: E402
from restore.export import build_networks, load_model, save_model  # noqa: E402
from restore.pipeline import WEIGHTS_DIR, Restorer  # noqa: E402

SHIPPED = WEIGHTS_DIR / "patina-small.safetensors"
#: Mean PSNR gain over the damaged input (dB) the shipped weights must reach and random ones must not.
MARGIN = 0.0
needs_weights = pytest.mark.skipif(not SHIPPED.is_file(), reason=f"{SHIPPED.name} not shipped in this checkout")


def mean_gain(restorer: Restorer) -> float:
    photo, degrader, gains = data.chelsea(), Degrader("old-photo"), []
    for seed in range(4):
        sample = degrader(photo, np.random.default_rng(seed))
        restored = restorer.restore(sample.degraded).image
        assert restored.shape == photo.shape and restored.dtype == np.uint8
        before, after = (peak_signal_noise_ratio(sample.clean, image) for image in (sample.degraded, restored))
        gains.append(after - before)
    return float(np.mean(gains))


@needs_weights
def test_shipped_weights_load_under_the_small_config() -> None:
    config, nets = load_model(SHIPPED)
    assert config == model_config("small") and set(nets) == {"vae_a", "vae_b", "mapping", "detector"}


@needs_weights
def test_shipped_weights_restore_the_held_out_photo_better_than_its_input() -> None:
    assert mean_gain(Restorer.load("patina-small", device="cpu")) > MARGIN


def test_random_weights_do_not_reach_the_margin(tmp_path: Path) -> None:
    """The other side of the margin: it measures training, not the pipeline around the networks."""
    torch.manual_seed(0)
    config = model_config("small")
    path = save_model(tmp_path / "random.safetensors", config, build_networks(config), {}, half=True)
    assert mean_gain(Restorer.load(path, device="cpu")) <= MARGIN
