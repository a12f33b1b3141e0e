"""Lossy compression: a JPEG encode/decode round trip."""

from __future__ import annotations

import cv2
import numpy as np

from degrade.ops.base import Config, Op, Params, randint, to_float, to_uint8


def sample_jpeg(rng: np.random.Generator, shape: tuple[int, int], cfg: Config) -> Params:
    return {"quality": randint(rng, cfg["quality"])}


def apply_jpeg(img: np.ndarray, params: Params) -> np.ndarray:
    """Blocking, ringing and chroma bleeding of a scan saved as JPEG at `quality` (1..100).

    The image is rounded to 8 bits and encoded by libjpeg with 4:2:0 chroma subsampling; it is
    handed over in BGR order so the encoder's YCbCr uses the right channels. Never identity:
    even quality 100 rounds to 8 bits and subsamples chroma.
    """
    quality = min(max(int(params["quality"]), 1), 100)
    u8 = to_uint8(img)
    flags = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), flags)
    if not ok:
        raise RuntimeError("jpeg: OpenCV failed to encode the image")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB)
    return to_float(decoded)


OPS = [
    Op(
        "jpeg",
        sample_jpeg,
        apply_jpeg,
        defaults={"quality": [30, 90]},
        doc="JPEG round trip (4:2:0); `quality` integer range, 1..100.",
    ),
]
