"""Restoration methods behind one interface: uint8 RGB image (+ the suite's mask if asked for) -> image (+ mask).

The runner only sees `Method`: `restore_many` turns jobs into results, timing each image and turning a crash into a
failed result for that image, so one bad image never stops a run. Methods come from three places:

- built-ins (`BUILTIN`, and `OPTIONAL` ones listed only when their package imports): `identity`; the denoisers
  `nlm` (OpenCV non-local means), `tv` (scikit-image total variation), `wavelet` (scikit-image BayesShrink) and
  `bm3d` (the `bm3d` package, when installed); the inpainters
  `telea`, `ns` (OpenCV Telea and Navier-Stokes) and `biharmonic` (scikit-image) fed the suite's true mask
  (`oracle_mask`: an upper bound for a detector, flagged in results); `nlm+telea` (both); and `telea-detect`,
  `nlm+telea-detect`, which inpaint what `detect_damage` finds and return that mask (`predicts_mask`);
- `cmd:` / `cmd-dir:` specs: any external program, per image or per folder (`degrade.bench.external`);
- the ``patina.methods`` entry-point group: ``name = "module:factory"``, ``factory()`` returns a `Method`. This is how
  the restorer registers ``restore`` without `degrade` importing torch.

Denoisers adapt to each image: their strength is proportional to scikit-image's wavelet estimate of the noise
standard deviation (`noise_sigma`); an image with less than MIN_SIGMA of it is returned unchanged. The factors
were chosen on four scikit-image photos at 96 px with added Gaussian noise (sigma 3-25), never on a suite.
Combined methods inpaint first, so the denoiser neither estimates its strength from nor copies patches of the
damage.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, partial

import cv2
import numpy as np
from skimage.restoration import denoise_tv_chambolle, denoise_wavelet, estimate_sigma, inpaint_biharmonic

from degrade.pipeline import is_gray

#: Entry-point group third-party packages register methods in.
GROUP = "patina.methods"
#: OpenCV NLM filter strength h (= hColor) per unit of estimated noise sigma (8-bit units); 7 px patches, 21 px search.
NLM_H_PER_SIGMA = 0.6
#: The same for a gray photo, denoised as one channel (OpenCV's colour variant filters Lab luminance, on another
#: scale): chosen on astronaut, coffee and rocket at 256 px in gray with Gaussian noise (sigma 5, 15, 25).
NLM_GRAY_H_PER_SIGMA = 1.0
#: Estimated noise (8-bit units) below which a denoiser returns the image as it is: nothing measurable to remove.
MIN_SIGMA = 0.5
#: TV-Chambolle weight per unit of estimated noise sigma (both on a 0..1 scale).
TV_WEIGHT_PER_SIGMA = 0.6
#: Neighbourhood radius (px) OpenCV's Telea and Navier-Stokes inpainting draw from.
INPAINT_RADIUS = 3
#: Detector (tuned at a 256 px short side; larger images scale the windows): median filter size that removes thin
#: damage, window of the local robust spread, threshold in those spreads, absolute floor (luma levels), and the
#: smallest component kept (px).
DETECT_MEDIAN, DETECT_WINDOW, DETECT_K, DETECT_FLOOR, DETECT_MIN_AREA = 5, 15, 4.0, 10, 3
DETECT_REFERENCE = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_MAX_ERROR = 300


class MethodError(RuntimeError):
    """A method failed on one image; the message is one line."""


@dataclass
class Output:
    """A restored uint8 RGB (H, W, 3) image and, for methods that predict one, the bool (H, W) damage mask."""

    image: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class Job:
    """One image to restore; `mask` (bool (H, W), the suite's truth) only for methods with `oracle_mask`."""

    key: str
    image: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class Result:
    """What became of a job: an output, or a one-line error; `seconds` is wall time for this image."""

    key: str
    output: Output | None
    seconds: float
    error: str | None = None


def error_line(exc: BaseException) -> str:
    """One line for a results file: a MethodError's own message, else the exception type and message."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, MethodError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


class Method:
    """Base class: subclasses set the flags and implement `restore` (or override `restore_many` for batches)."""

    name: str = ""
    oracle_mask: bool = False
    predicts_mask: bool = False

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        """Restore one uint8 RGB image; `mask` is the suite's bool damage mask when `oracle_mask`, else None."""
        raise NotImplementedError(f"{type(self).__name__} does not implement restore()")

    def restore_many(self, jobs: Iterable[Job]) -> Iterator[Result]:
        """Restore each job in turn, timing it; an exception or an unusable output fails that job only."""
        for job in jobs:
            start = time.perf_counter()
            try:
                output, error = self.checked(self.restore(job.image, job.mask), job.image), None
            except Exception as exc:  # any failure of a method is that image's result, never the run's end
                output, error = None, error_line(exc)
            yield Result(job.key, output, time.perf_counter() - start, error)

    def checked(self, output: Output, image: np.ndarray) -> Output:
        """`output` if it is a uint8 image of the input's shape (and a fitting mask when one is predicted)."""
        if not isinstance(output, Output):
            raise MethodError(f"restore() returned {type(output).__name__}, not an Output")
        got = output.image
        if not isinstance(got, np.ndarray) or got.dtype != np.uint8 or got.shape != image.shape:
            shape = getattr(got, "shape", None)
            raise MethodError(
                f"output image is {getattr(got, 'dtype', type(got))} {shape}, expected uint8 {image.shape}"
            )
        if self.predicts_mask:
            if output.mask is None or output.mask.shape != image.shape[:2]:
                shape = None if output.mask is None else output.mask.shape
                raise MethodError(f"predicted mask is {shape}, expected {image.shape[:2]}")
            return Output(got, output.mask > 0)
        return Output(got, None)


# --- classical building blocks (uint8 RGB in, uint8 RGB out)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image on a 0..1 scale as rounded, clipped uint8."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def noise_sigma(image: np.ndarray) -> float:
    """Estimated standard deviation of Gaussian noise in 8-bit units (wavelet MAD, averaged over channels)."""
    return float(estimate_sigma(image.astype(np.float64), channel_axis=-1, average_sigmas=True))


def nlm(image: np.ndarray) -> np.ndarray:
    """OpenCV's non-local means for colour (in Lab), h = hColor = NLM_H_PER_SIGMA x the estimated noise; a gray
    photo is denoised as one channel, h = NLM_GRAY_H_PER_SIGMA x the estimated noise."""
    sigma = noise_sigma(image)
    if sigma < MIN_SIGMA:
        return image.copy()
    if is_gray(image):  # the colour variant works in Lab and would tint a gray photo
        gray = np.ascontiguousarray(image[..., 0])
        return np.repeat(cv2.fastNlMeansDenoising(gray, None, NLM_GRAY_H_PER_SIGMA * sigma, 7, 21)[..., None], 3, 2)
    h = NLM_H_PER_SIGMA * sigma
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)


def tv(image: np.ndarray) -> np.ndarray:
    """Total-variation denoising (Chambolle), weight TV_WEIGHT_PER_SIGMA x the estimated noise, channels jointly."""
    sigma = noise_sigma(image)
    if sigma < MIN_SIGMA:
        return image.copy()
    return to_uint8(denoise_tv_chambolle(image / 255, weight=TV_WEIGHT_PER_SIGMA * sigma / 255, channel_axis=-1))


def wavelet(image: np.ndarray) -> np.ndarray:
    """Wavelet BayesShrink soft thresholding in YCbCr (scikit-image estimates the noise per wavelet level).

    A gray photo (three equal channels) is denoised as one channel: its flat chroma channels would get a zero
    noise estimate, which BayesShrink divides by."""
    if noise_sigma(image) < MIN_SIGMA:
        return image.copy()
    options = {"method": "BayesShrink", "mode": "soft", "rescale_sigma": True}
    if is_gray(image):
        return np.repeat(to_uint8(denoise_wavelet(image[..., 0] / 255, **options))[..., None], 3, axis=2)
    return to_uint8(denoise_wavelet(image / 255, channel_axis=-1, convert2ycbcr=True, **options))


def bm3d_denoise(image: np.ndarray) -> np.ndarray:
    """BM3D (the `bm3d` package, opponent colour space) with the estimated noise as its sigma."""
    import bm3d

    sigma = noise_sigma(image)
    return to_uint8(bm3d.bm3d_rgb(image / 255, sigma / 255)) if sigma >= MIN_SIGMA else image.copy()


def opencv_inpaint(image: np.ndarray, mask: np.ndarray, flag: int) -> np.ndarray:
    """Fill the bool `mask` from its surroundings within INPAINT_RADIUS px (cv2.INPAINT_TELEA or INPAINT_NS)."""
    return cv2.inpaint(image, mask.astype(np.uint8), INPAINT_RADIUS, flag)


def biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Biharmonic inpainting of the bool `mask`, each connected region solved on its own (much faster, same idea)."""
    return to_uint8(inpaint_biharmonic(image / 255, mask, split_into_regions=True, channel_axis=-1))


def _odd(size: float) -> int:
    return 2 * round((size - 1) / 2) + 1


def detect_damage(image: np.ndarray) -> np.ndarray:
    """A classical detector of thin and small damage (scratches, cracks, specks): bool (H, W).

    Damage narrower than a few pixels is what a median filter removes, so the residual luma minus its
    DETECT_MEDIAN median marks candidates. Fine texture leaves large residuals too; a pixel counts only where its
    residual exceeds DETECT_K times the local robust spread (1.4826 x the median of |residual| over a
    DETECT_WINDOW window) and DETECT_FLOOR levels, and components under DETECT_MIN_AREA px are dropped. The windows
    grow with images above DETECT_REFERENCE px (the engine draws damage in proportion to the image).

    It is a baseline for learned detectors, not a rival: on engine samples of scikit-image photos at 256 px its pooled
    F1 was about 0.15, and Telea inpainting of its mask lowers whole-image PSNR (false alarms in texture cost more
    than the damage it finds), though PSNR inside the damage rises. Large holes and stains (not thin) are missed.
    """
    scale = max(1.0, min(image.shape[:2]) / DETECT_REFERENCE)
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    residual = luma.astype(np.int16) - cv2.medianBlur(luma, _odd(DETECT_MEDIAN * scale)).astype(np.int16)
    magnitude = np.abs(residual).astype(np.uint8)  # |uint8 - uint8| <= 255
    spread = cv2.medianBlur(magnitude, _odd(DETECT_WINDOW * scale)).astype(np.float32) * 1.4826
    candidates = (magnitude > np.maximum(DETECT_FLOOR, DETECT_K * spread)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= DETECT_MIN_AREA
    keep[0] = False  # background
    return keep[labels]


# --- built-in methods

Denoiser = Callable[[np.ndarray], np.ndarray]
Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Classical(Method):
    """An optional inpainter, then an optional denoiser; `mask` says what the inpainter is fed: "oracle" (the
    suite's mask), "detect" (`detect_damage`'s, returned as the prediction) or "none"."""

    def __init__(
        self, name: str, denoise: Denoiser | None = None, inpaint: Inpainter | None = None, mask: str = "none"
    ) -> None:
        self.name, self.denoise, self.inpaint = name, denoise, inpaint
        self.oracle_mask, self.predicts_mask = mask == "oracle", mask == "detect"

    def restore(self, image: np.ndarray, mask: np.ndarray | None) -> Output:
        if self.predicts_mask:
            mask = detect_damage(image)
        elif self.oracle_mask and mask is None:
            raise MethodError(f"{self.name} needs the suite's damage mask")
        out = image.copy()
        if self.inpaint is not None and mask is not None and mask.any():
            out = self.inpaint(out, mask > 0)
        if self.denoise is not None:
            out = self.denoise(out)
        return Output(out, mask if self.predicts_mask else None)


telea = partial(opencv_inpaint, flag=cv2.INPAINT_TELEA)
navier_stokes = partial(opencv_inpaint, flag=cv2.INPAINT_NS)

#: Built-in method factories by name.
BUILTIN: dict[str, Callable[[], Method]] = {
    "identity": lambda: Classical("identity"),
    "nlm": lambda: Classical("nlm", denoise=nlm),
    "tv": lambda: Classical("tv", denoise=tv),
    "telea": lambda: Classical("telea", inpaint=telea, mask="oracle"),
    "ns": lambda: Classical("ns", inpaint=navier_stokes, mask="oracle"),
    "biharmonic": lambda: Classical("biharmonic", inpaint=biharmonic, mask="oracle"),
    "nlm+telea": lambda: Classical("nlm+telea", denoise=nlm, inpaint=telea, mask="oracle"),
    "telea-detect": lambda: Classical("telea-detect", inpaint=telea, mask="detect"),
    "nlm+telea-detect": lambda: Classical("nlm+telea-detect", denoise=nlm, inpaint=telea, mask="detect"),
    "wavelet": lambda: Classical("wavelet", denoise=wavelet),
}
#: Built-ins that need an optional package, by name: (module, factory). BM3D's licence is non-commercial, so
#: `bm3d` is not a dependency.
OPTIONAL: dict[str, tuple[str, Callable[[], Method]]] = {
    "bm3d": ("bm3d", lambda: Classical("bm3d", denoise=bm3d_denoise)),
}


@cache
def _importable(module: str) -> str | None:
    """None when `module` imports, else why not (one line)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken optional package must not break the others
        return error_line(exc)
    return None


# --- registry


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The patina.methods entry points by name (the first one wins when two packages use a name)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for point in importlib.metadata.entry_points(group=GROUP):
        found.setdefault(point.name, point)
    return found


def _load(point: importlib.metadata.EntryPoint) -> tuple[Callable[..., Method] | None, str | None]:
    """(factory, None), or (None, why it cannot be loaded)."""
    try:
        return point.load(), None
    except Exception as exc:  # a broken third-party package must not break listing the others
        return None, f"cannot load {point.value} ({error_line(exc)})"


def method_names() -> list[str]:
    """Built-ins, the optional built-ins whose package imports, then entry points that load; an entry point never
    takes a built-in's name."""
    names = list(BUILTIN) + [name for name, (module, _) in OPTIONAL.items() if _importable(module) is None]
    reserved = BUILTIN.keys() | OPTIONAL.keys()
    extra = [name for name, point in _entry_points().items() if name not in reserved and _load(point)[0] is not None]
    return names + sorted(extra)


def default_name(spec: str) -> str:
    """A stable folder name for a cmd: spec given no --name: 'cmd-' and 8 hex digits of the spec's sha256."""
    return "cmd-" + hashlib.sha256(spec.encode()).hexdigest()[:8]


def get_method(spec: str, name: str | None = None, timeout: float = 600.0) -> Method:
    """The method for `spec` (see the module docstring), named `name` (default: the spec, or `default_name`).

    `timeout` (seconds per image) applies to external programs; in-process methods cannot be interrupted safely.
    Raises ValueError (one line) for an unknown or unavailable method or a bad name.
    """
    if spec.startswith(("cmd:", "cmd-dir:")):
        from degrade.bench.external import command_method  # external imports this module

        method, default = command_method(spec, timeout), default_name(spec)
    elif spec in BUILTIN:
        method, default = BUILTIN[spec](), spec
    elif spec in OPTIONAL:
        module, factory = OPTIONAL[spec]
        if (reason := _importable(module)) is not None:
            raise ValueError(f"method {spec!r} is unavailable: package {module} does not import ({reason})")
        method, default = factory(), spec
    elif (point := _entry_points().get(spec)) is not None:
        method, default = _from_entry_point(spec, point), spec
    else:
        known = ", ".join(method_names())
        raise ValueError(f"unknown method {spec!r}; known: {known}, cmd:<command line>, cmd-dir:<command line>")
    method.name = name or default
    if not _NAME.fullmatch(method.name):
        raise ValueError(f"method name {method.name!r}: use letters, digits and . _ + - (it names a folder)")
    return method


def _from_entry_point(spec: str, point: importlib.metadata.EntryPoint) -> Method:
    factory, reason = _load(point)
    if factory is None:
        raise ValueError(f"method {spec!r} is unavailable: {reason}")
    try:
        method = factory()
    except Exception as exc:  # e.g. missing weights: unavailable, said in one line
        raise ValueError(f"method {spec!r} is unavailable: {point.value}() failed ({error_line(exc)})") from None
    if not isinstance(method, Method):
        raise ValueError(
            f"method {spec!r} is unavailable: {point.value}() returned {type(method).__name__}, not a Method"
        )
    return method
