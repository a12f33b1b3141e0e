"""Shared fixtures: small real photos (from scikit-image's bundled data) written to temporary folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def small_photo(name: str, short_side: int = 48) -> np.ndarray:
    """A real photo from scikit-image, shrunk so tests stay fast; uint8 RGB."""
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    h, w = img.shape[:2]
    scale = short_side / min(h, w)
    return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of five small real photos (PNG and JPEG, one in a subfolder)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, name in enumerate(PHOTOS):
        target = root / ("sub" if i == 4 else ".") / f"{name}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(small_photo(name)).save(target, quality=95)
    return root
