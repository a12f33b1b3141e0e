"""The restorer as a `degrade-bench` method, registered through the ``patina.methods`` entry point.

`degrade` lists entry points without importing torch: this module imports the model only when the method is
built. `restore` runs the shipped weights; ``PATINA_WEIGHTS`` (a `restore export` file) and ``PATINA_DEVICE``
(cpu, cuda, auto) choose others, since `degrade-bench run` builds methods by name only.
"""

from __future__ import annotations

import os

import numpy as np

from degrade.bench.methods import Method, Output


class RestoreMethod(Method):
    """Blind restoration: the detector finds the damage (returned as the predicted mask), the model restores."""

    predicts_mask = True

    def __init__(self, weights: str, device: str) -> None:
        from restore.pipeline import Restorer  # torch only when the method is used

        self.name = "restore"
        self.restorer = Restorer.load(weights, device=device)

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        restored = self.restorer.restore(image)
        return Output(restored.image, restored.mask)


def factory() -> RestoreMethod:
    return RestoreMethod(os.environ.get("PATINA_WEIGHTS", "patina-small"), os.environ.get("PATINA_DEVICE", "auto"))
