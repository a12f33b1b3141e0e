"""Reading a user's photo and writing its restoration: what `restore run` needs around the model.

Decoding goes through `degrade.sources.load_image` (every format Pillow reads, EXIF orientation applied,
16-bit and palette images converted, one-line errors naming the file for anything unreadable). On top of
it this module remembers what the restoration must give back: a grayscale photo stays grayscale, and an
alpha channel, which the model cannot restore, is dropped with a warning.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from degrade.pipeline import is_gray
from degrade.sources import ImageError, load_image
from degrade.writer import atomic_write

#: File name endings `restore run` picks up in a folder.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


class AlphaDropped(UserWarning):
    """The photo had transparency; the restoration is opaque (composited over white)."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo: `rgb` uint8 (H, W, 3) as a viewer shows it; `gray` when it has no colour."""

    path: Path
    rgb: np.ndarray
    gray: bool


def read_photo(path: Path) -> Photo:
    """Decode `path`; raises `degrade.sources.ImageError` (one line naming the file) when it cannot."""
    rgb, _ = load_image(path)
    with Image.open(path) as header:  # decoded above, so the header reads
        mode, info = header.mode, header.info
    if mode.endswith("A") or mode == "PA" or "transparency" in info:
        warnings.warn(f"{path}: transparency dropped (composited over white)", AlphaDropped, stacklevel=2)
    return Photo(Path(path), rgb, is_gray(rgb))  # gray modes decode to three equal channels


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write uint8 pixels ((H, W) gray or (H, W, 3) RGB) as PNG, atomically: an interrupted run never
    leaves a half-written file under the final name."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), buffer.getvalue())


__all__ = ["PHOTO_SUFFIXES", "AlphaDropped", "ImageError", "Photo", "read_photo", "write_png"]
