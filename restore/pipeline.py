"""Restore a photo with a trained model: detector -> VAE A encoder -> mapping T -> VAE B decoder.

`Restorer.load()` loads the weights shipped with the package (`patina-small`) or any file written by
`restore export`. `restore(image)`:

1. pads the photo by reflection to a multiple of 8 px (the detector's stride; the VAEs need 4) and crops
   the result back at the end, so nothing is ever resized;
2. unless `scratches="off"`, runs the scratch detector on its luma: pixels with probability at least
   `THRESHOLD` are damage, and the mask is dilated by `DILATION` px, because the mapping fills a hole from
   its surroundings and a scratch's soft fringe left outside the mask would be copied in as if it were
   picture; with `scratches="auto"` a mask covering less than `AUTO_MIN_FRACTION` of the photo counts as
   no scratches (stray detections on an undamaged photo), with `"on"` any mask is used;
3. encodes with VAE A, maps the latent with T (through the partial nonlocal block when there is a mask,
   without it otherwise) and decodes with VAE B.

On the CPU the VAEs and the mapping run in channels-last layout, which oneDNN's convolutions take without
reordering every activation; the detector, whose instance norms and narrow convolutions run slower so, stays
contiguous (`CHANNELS_LAST`, measured by `python benchmarks/restore_layout.py`; outputs differ by float
rounding only).

Memory stays bounded on large photos: a photo of more than `max_pixels` runs the detector and both VAEs in
tiles with the result of a single pass (`restore.tiling`: global instance-norm statistics, halos measured
from the networks' receptive fields). The mapping, whose partial nonlocal block must see every valid
position of the photo, runs on the whole latent, 16 times smaller than the photo, with the block's
attention computed a chunk of hole positions at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch import nn

from restore.config import ModelConfig
from restore.export import load_model
from restore.nets.detector import LUMA, to_detector_input
from restore.tiling import pad_to_multiple, receptive_radius, run_tiled

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The weights that ship inside the package, by name.
SHIPPED = ("patina-small",)
#: Detector probability from which a pixel is damage. Focal loss leaves a detector under-confident and a Dice
#: term pushes it the other way, so this is not 0.5: it is the best-F1 cut of the dilated mask on validation
#: renders of the training photos at other seeds (`tools/detector_threshold.py`), never on the evaluation
#: suite. The recipe's 4,000-step detector scores best at 0.8 of the cuts up to 0.8 (dilated F1 0.345 against
#: 0.328 at 0.4); above, F1 gains 0.005 by 0.95 while the dilated mask's recall, which the inpainting needs,
#: falls from 0.43 to 0.39; the thresholded mask's F1 is flat (0.44-0.46 from 0.05 to 0.8).
THRESHOLD = 0.8
#: Radius in px by which the thresholded mask grows (a 3x3 neighbourhood per unit).
DILATION = 1
#: With scratches="auto", a mask smaller than this fraction of the photo is ignored.
AUTO_MIN_FRACTION = 1e-4
#: Photos up to this many pixels run in one pass; larger ones in tiles of about this size.
MAX_PIXELS = 1_600_000
#: Each network's share of `max_pixels`: the detector's single pass needs about 2/3 of the memory per
#: pixel of the VAEs and mapping (measured at 2 MP: +1.35 GB against +2.0 GB), so it tiles only above
#: 1.5x the budget, sparing its costly exact tiling (one pass per instance norm) on mid-sized photos.
BUDGET_SCALE = {"detector": 1.5, "encoder": 1.0, "decoder": 1.0}
#: The networks that run channels-last on the CPU, where they are faster so (v26, a 1 MP photo, 2 threads: VAE A's
#: encoder 1.30x, VAE B's decoder 1.14x, the mapping 1.05x); the detector, 0.79x so, is left out.
CHANNELS_LAST = ("vae_a", "vae_b", "mapping")
#: Padding multiple: the detector's total stride (2^depth for the shipped configs; the VAEs need 4).
MULTIPLE = 8

Scratches = Literal["auto", "on", "off"]


class RestoreError(ValueError):
    """A model that cannot be found or an argument out of range; the message is one line."""


@dataclass(frozen=True)
class Restored:
    """A restoration: `image` uint8 of the input's shape; `mask` bool (H, W), the dilated damage mask the
    mapping used (all False when the detector found nothing, None when scratches="off"); `probability`
    float32 (H, W) from the detector (None when it did not run)."""

    image: np.ndarray
    mask: np.ndarray | None
    probability: np.ndarray | None


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RestoreError(f"device {device!r}: CUDA is not available here (use --device cpu)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise RestoreError(f"unknown device {device!r} (cpu, cuda, cuda:N or auto)") from None


def weights_path(weights: str | Path) -> Path:
    """A shipped model's file by name, or the given file."""
    if isinstance(weights, str) and weights in SHIPPED:
        path = WEIGHTS_DIR / f"{weights}.safetensors"
        if not path.is_file():
            raise RestoreError(
                f"{path}: the {weights} weights are not in this installation; make them with "
                "tools/train_bundled.py, or pass --weights FILE from `restore export`"
            )
        return path
    path = Path(weights)
    if not path.is_file():
        names = ", ".join(SHIPPED)
        raise RestoreError(f"{path}: no such model file (a file from `restore export`, or one of: {names})")
    return path


def dilate(mask: np.ndarray, radius: int = DILATION) -> np.ndarray:
    """bool (H, W) mask grown by `radius` px in every direction (a square neighbourhood)."""
    if radius <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def damage_mask(probability: np.ndarray) -> np.ndarray:
    """The mask the restorer uses from detector probabilities: thresholded at `THRESHOLD`, dilated."""
    return dilate(probability >= THRESHOLD)


class Restorer:
    """A loaded restoration model on one device. Thread-compatible, not thread-safe (one call at a time)."""

    def __init__(
        self,
        config: ModelConfig,
        nets: dict[str, nn.Module],
        device: torch.device,
        max_pixels: int = MAX_PIXELS,
        channels_last: bool | None = None,
    ) -> None:
        """`channels_last`: run `CHANNELS_LAST` channels-last (None: on the CPU only, where it was measured)."""
        if max_pixels < 64 * 64:
            raise RestoreError(f"max_pixels must be at least {64 * 64}, got {max_pixels}")
        self.config = config
        self.device = device
        channels_last = device.type == "cpu" if channels_last is None else channels_last
        self.layouts = {
            name: torch.channels_last if channels_last and name in CHANNELS_LAST else torch.contiguous_format
            for name in nets
        }
        self.nets = {
            name: net.to(device, memory_format=self.layouts[name]).eval().requires_grad_(False)
            for name, net in nets.items()
        }
        self.max_pixels = max_pixels
        self._halos: dict[str, int] = {}
        gray = config.detector.in_channels == 1
        self._detector_input: Callable[[torch.Tensor], torch.Tensor] = to_detector_input if gray else torch.clone

    @classmethod
    def load(cls, weights: str | Path = "patina-small", device: str = "auto", max_pixels: int = MAX_PIXELS) -> Restorer:
        """The shipped model by name (`SHIPPED`) or a `restore export` file, on `device`."""
        target = resolve_device(device)  # the cheap check first
        config, nets = load_model(weights_path(weights), device="cpu")
        return cls(config, nets, target, max_pixels)

    # --- the networks, each a function of a padded (1, C, H, W) tensor, tiled when large

    def _tiled(self, name: str, net: Callable, module: nn.Module, x: torch.Tensor, unit: int) -> torch.Tensor:
        """`net(x)` in tiles of about `max_pixels` (times the network's `BUDGET_SCALE`) when x is larger;
        `unit` = input px per x px (4 for latents), so budgets are in photo pixels for every network."""
        budget = int(self.max_pixels * BUDGET_SCALE[name])
        if x.shape[-2] * x.shape[-1] * unit * unit <= budget:
            return net(x)
        side = (math.isqrt(budget) // unit) // MULTIPLE * MULTIPLE
        halo = self._halos[name]
        core = max(MULTIPLE, (side - 2 * halo) // MULTIPLE * MULTIPLE)
        return run_tiled(net, module, x, core=core, halo=halo)

    def _measure_halos(self, tiled: bool) -> None:
        """Receptive fields of the tiled networks, measured once, and only when a photo needs tiles."""
        if not tiled or self._halos:
            return
        vae_a, vae_b, detector = self.nets["vae_a"], self.nets["vae_b"], self.nets["detector"]
        with torch.device(self.device):
            self._halos = {
                "detector": receptive_radius(lambda t: detector(self._detector_input(t)), detector, 3, MULTIPLE),
                "encoder": receptive_radius(vae_a.encode, vae_a, 3, MULTIPLE),
                "decoder": receptive_radius(vae_b.decode, vae_b, self.config.vae.latent, 1, size=32),
            }
        # The decoder's field is measured in latent px; tiles step in multiples of MULTIPLE latent px.
        self._halos["decoder"] = math.ceil(self._halos["decoder"] / MULTIPLE) * MULTIPLE

    def _probability(self, x: torch.Tensor) -> torch.Tensor:
        detector = self.nets["detector"]
        logits = self._tiled("detector", lambda t: detector(self._detector_input(t)), detector, x, 1)
        return torch.sigmoid(logits)

    def _restore(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        vae_a, vae_b = self.nets["vae_a"], self.nets["vae_b"]
        x = x.contiguous(memory_format=self.layouts["vae_a"])
        latent = self._tiled("encoder", vae_a.encode, vae_a, x, 1)
        mapped = self.nets["mapping"](latent, mask)
        del latent
        return self._tiled("decoder", vae_b.decode, vae_b, mapped, 4)

    # --- public API on uint8 arrays

    def _prepare(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
            raise RestoreError(f"expected a uint8 (H, W) or (H, W, 3) image, got {image.dtype} {image.shape}")
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        x = torch.from_numpy(np.array(rgb, order="C")).to(self.device).permute(2, 0, 1)[None].float()
        self._measure_halos(rgb.shape[0] * rgb.shape[1] > self.max_pixels)
        return pad_to_multiple(x / 127.5 - 1, MULTIPLE, minimum=2 * MULTIPLE)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Scratch probability, float32 (H, W), of a uint8 (H, W) or (H, W, 3) photo."""
        x = self._prepare(image)
        with torch.inference_mode():
            probability = self._probability(x)
        return probability[0, 0, : image.shape[0], : image.shape[1]].float().cpu().numpy()

    def restore(self, image: np.ndarray, scratches: Scratches = "auto") -> Restored:
        """Restore a uint8 (H, W) or (H, W, 3) photo; the result has the input's shape (gray stays gray)."""
        if scratches not in ("auto", "on", "off"):
            raise RestoreError(f"scratches must be auto, on or off, got {scratches!r}")
        height, width = image.shape[:2]
        x = self._prepare(image)
        mask = probability = None
        with torch.inference_mode():
            hole = None
            if scratches != "off":
                prob = self._probability(x)[0, 0]
                probability = prob[:height, :width].float().cpu().numpy()
                mask = damage_mask(probability)
                if mask.any() and (scratches == "on" or mask.mean() >= AUTO_MIN_FRACTION):
                    padded = np.zeros(x.shape[-2:], dtype=np.float32)
                    padded[:height, :width] = mask
                    hole = torch.from_numpy(padded).to(self.device)[None, None]
                else:
                    mask = np.zeros_like(mask)
            out = self._restore(x, hole)[0, :, :height, :width]
        pixels = ((out.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if image.ndim == 2:
            pixels = np.rint(pixels.astype(np.float32) @ np.asarray(LUMA, dtype=np.float32)).astype(np.uint8)
        return Restored(pixels, mask, probability)
