"""The peers we measure against, doing the same work as our `bopbtl` preset.

* `official`: the degradation of the "Bringing Old Photos Back to Life" release
  (Global/data/online_dataset_for_old_photos.py), reimplemented with the same libraries
  and calls: PIL images between steps, float64 NumPy noise, cv2 Gaussian blur, PIL resize
  and PIL JPEG, global `random` / `np.random` state.
* `albumentations`: the equivalent albumentations 2.x pipeline (four transforms in random
  order, each with p=0.7; the noise one of Gaussian, multiplicative, salt-and-pepper).
"""

from __future__ import annotations

import random
from io import BytesIO

import cv2
import numpy as np
from PIL import Image


def _noise_official(img: Image.Image) -> Image.Image:
    x = np.asarray(img).astype(np.float32) / 255.0
    kind = random.choice([1, 2, 3])
    if kind == 3:
        amount, salt = random.uniform(0, 0.01), random.uniform(0.3, 0.8)
        flipped = np.random.choice([True, False], size=x.shape, p=[amount, 1 - amount])
        salted = np.random.choice([True, False], size=x.shape, p=[salt, 1 - salt])
        x = x.copy()
        x[flipped & salted] = 1.0
        x[flipped & ~salted] = 0.0
    else:
        std = random.uniform(5 / 255.0, 50 / 255.0)
        gauss = np.random.normal(0.0, std, size=x.shape)
        x = x + gauss if kind == 1 else x + gauss * x
    return Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8))


def _low_res_official(img: Image.Image) -> Image.Image:
    w, h = img.size
    small = img.resize((random.randint(w // 2, w), random.randint(h // 2, h)), Image.BICUBIC)
    return small.resize((w, h), Image.NEAREST if random.random() < 0.5 else Image.BILINEAR)


def _jpeg_official(img: Image.Image) -> Image.Image:
    with BytesIO() as buf:
        img.save(buf, format="JPEG", quality=random.randint(40, 100))
        buf.seek(0)
        return Image.open(buf).convert("RGB")


def _blur_official(img: Image.Image) -> Image.Image:
    k = random.choice([3, 5, 7])
    return Image.fromarray(cv2.GaussianBlur(np.asarray(img), (k, k), random.uniform(1.0, 5.0)))


def official(image: np.ndarray) -> np.ndarray:
    """One sample of the official online degradation, uint8 RGB in and out."""
    img = Image.fromarray(image)
    steps = (_blur_official, _noise_official, _low_res_official, _jpeg_official)
    for task in np.random.permutation(4):
        if random.uniform(0, 1) < 0.7:
            img = steps[task](img)
    if random.uniform(0, 1) < 0.1:
        img = img.convert("L").convert("RGB")
    return np.asarray(img)


def albumentations_pipeline():
    """The same recipe expressed in albumentations (imported lazily: an optional benchmark extra)."""
    import albumentations as A

    return A.Compose(
        [
            A.SomeOf(
                [
                    A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(1.0, 5.0), p=0.7),
                    A.OneOf(
                        [
                            A.GaussNoise(std_range=(5 / 255, 50 / 255), p=1.0),
                            A.MultiplicativeNoise(multiplier=(0.8, 1.2), per_channel=True, elementwise=True, p=1.0),
                            A.SaltAndPepper(amount=(0.0, 0.01), salt_vs_pepper=(0.3, 0.8), p=1.0),
                        ],
                        p=0.7,
                    ),
                    A.Downscale(
                        scale_range=(0.5, 1.0),
                        interpolation_pair={"downscale": cv2.INTER_CUBIC, "upscale": cv2.INTER_LINEAR},
                        p=0.7,
                    ),
                    A.ImageCompression(quality_range=(40, 100), p=0.7),
                ],
                n=4,
                replace=False,
                p=1.0,
            ),
            A.ToGray(num_output_channels=3, p=0.1),
        ]
    )
