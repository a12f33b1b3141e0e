"""Render the pictures in README.md and docs/ and write docs/presets.md.

    python tools/make_docs_images.py

Photos come from scikit-image's bundled sample data (public domain / CC0), read at run
time; the outputs are small JPEGs under docs/images/. Deterministic: seeds are fixed below.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from degrade import Degrader
from degrade.ops import OPS
from degrade.pipeline import to_float, to_uint8
from degrade.presets import builtin_presets, load_preset
from degrade.sources import load_image, open_source

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
TILE = 256


def photo(name: str, size: int = TILE) -> np.ndarray:
    item = next(i for i in open_source("sample").items if i.id == name)
    img = load_image(item.path)[0]
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def grid(rows: list[list[np.ndarray]], labels: list[str] | None = None, gap: int = 4) -> Image.Image:
    h, w = rows[0][0].shape[:2]
    label_h = 18 if labels else 0
    canvas = Image.new("RGB", (len(rows[0]) * (w + gap) - gap, len(rows) * (h + gap + label_h) - gap), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y = r * (h + gap + label_h)
            canvas.paste(Image.fromarray(img), (c * (w + gap), y + label_h))
        if labels:
            draw.text((2, r * (h + gap + label_h) + 3), labels[r], fill="black")
    return canvas


def sampled(name: str, seed: int) -> dict:
    """Params of op `name` drawn from its defaults with a fixed seed."""
    op = OPS[name]
    return op.sample(np.random.default_rng(seed), (TILE, TILE), op.defaults)


# Two settings per op, mild then strong, chosen to show what each parameter does.
EXAMPLES: dict[str, tuple[dict, dict]] = {
    "gaussian_blur": ({"kernel": 0, "sigma": 1.0}, {"kernel": 0, "sigma": 3.0}),
    "motion_blur": ({"length": 5.0, "angle": 20.0}, {"length": 15.0, "angle": 20.0}),
    "defocus_blur": ({"radius": 1.5}, {"radius": 4.0}),
    "gaussian_noise": ({"sigma": 0.03, "mono": False, "seed": 1}, {"sigma": 0.1, "mono": False, "seed": 1}),
    "poisson_noise": ({"amount": 0.04, "seed": 1}, {"amount": 0.12, "seed": 1}),
    "speckle_noise": ({"sigma": 0.05, "seed": 1}, {"sigma": 0.2, "seed": 1}),
    "salt_pepper": (
        {"amount": 0.003, "salt_vs_pepper": 0.5, "per_channel": False, "seed": 1},
        {"amount": 0.02, "salt_vs_pepper": 0.5, "per_channel": True, "seed": 1},
    ),
    "film_grain": (
        {"amount": 0.02, "size": 0.8, "color": 0.0, "seed": 1},
        {"amount": 0.06, "size": 1.5, "color": 0.4, "seed": 1},
    ),
    "low_resolution": (
        {"scale_x": 0.6, "scale_y": 0.6, "down": "area", "up": "bilinear"},
        {"scale_x": 0.3, "scale_y": 0.3, "down": "bicubic", "up": "nearest"},
    ),
    "jpeg": ({"quality": 50}, {"quality": 10}),
    "fade": (
        {"contrast": 0.2, "saturation": 0.3, "black_lift": 0.06, "white_drop": 0.04},
        {"contrast": 0.45, "saturation": 0.7, "black_lift": 0.15, "white_drop": 0.1},
    ),
    "color_cast": (
        {"gain": [1.04, 0.98, 0.97], "offset": [0.02, -0.005, 0.0]},
        {"gain": [1.12, 0.93, 1.0], "offset": [-0.02, 0.03, 0.02]},
    ),
    "sepia": ({"amount": 0.6, "warmth": 0.5}, {"amount": 1.0, "warmth": 1.0}),
    "yellowing": ({"amount": 0.2}, {"amount": 0.6}),
    "exposure": (
        {
            "vignette": 0.25,
            "center": [0.5, 0.5],
            "gradient": 0.0,
            "angle": 0.0,
            "blotches": 0.0,
            "grid": [[0.0] * 4] * 4,
        },
        {
            "vignette": 0.4,
            "center": [0.45, 0.55],
            "gradient": 0.4,
            "angle": 30.0,
            "blotches": 0.2,
            "grid": np.random.default_rng(5).standard_normal((4, 4)).tolist(),
        },
    ),
    "grayscale": ({}, {}),
    # Texture ops record the texture's pixel hash: sample the placement, then set the look.
    "paper_texture": (
        {**sampled("paper_texture", 3), "mode": "soft_light", "opacity": 0.25},
        {**sampled("paper_texture", 3), "mode": "multiply", "opacity": 0.6},
    ),
}


def op_examples(source: np.ndarray) -> list[tuple[str, tuple[dict, dict], str]]:
    """One picture per unstructured op: the photo, the op mild, the op strong (structured ops: make_catalogue.py)."""
    unstructured = {name: op for name, op in OPS.items() if not op.structured}
    missing = set(unstructured) - set(EXAMPLES)
    if missing:
        raise SystemExit(f"add example params for: {', '.join(sorted(missing))}")
    rows = []
    for name, op in sorted(unstructured.items()):
        settings = EXAMPLES[name]
        outs = [to_uint8(op.apply(to_float(source), params)) for params in settings]
        path = IMAGES / "ops" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid([[source, *outs]]).save(path, quality=90)
        rows.append((name, settings, path.relative_to(ROOT / "docs").as_posix()))
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return json.dumps(value)


def presets_markdown(examples: list[tuple[str, tuple[dict, dict], str]]) -> str:
    lines = [
        "# Presets and ops",
        "",
        "Generated by `python tools/make_docs_images.py`; do not edit by hand.",
        "",
        "Every op is a pair *sample parameters → apply*: `sample(rng, shape, config)` draws every",
        "random value into plain JSON params, `apply(image, params)` is a pure function of the",
        "image and those params. Images are float32 RGB in [0, 1]; sizes and lengths are in pixels,",
        "noise strengths in [0, 1] units (0.02 ≈ 5 grey levels).",
        "",
        "## Presets",
        "",
    ]
    for name in builtin_presets():
        preset = load_preset(name)
        lines += [f"### `{name}`", "", preset["description"], ""]
        if name == "old-photo":
            lines += ["![16 old-photo samples of scikit-image photos, seeds 100-115](images/old-photo-sheet.jpg)", ""]
        for stage_name, stage in [("target (clean too)", preset["target"])] + list(preset["stages"].items()):
            if not stage["ops"]:
                continue
            lines.append(f"- **{stage_name}**{' (shuffled)' if stage['shuffle'] else ''}:")
            for label, entry in stage["ops"].items():
                when = "" if entry["when"] == "any" else f", {entry['when']} targets only"
                if "one_of" in entry:
                    total = sum(c["weight"] for c in entry["one_of"].values())
                    opts = "; ".join(
                        f"`{c['op']}` ({c['weight'] / total:.0%}) "
                        + ", ".join(f"{k}={_fmt(v)}" for k, v in c["config"].items())
                        for c in entry["one_of"].values()
                    )
                    lines.append(f"  - `{label}` p={entry['p']:g}{when}: one of {opts}")
                else:
                    cfg = ", ".join(f"{k}={_fmt(v)}" for k, v in entry["config"].items())
                    lines.append(f"  - `{entry['op']}` p={entry['p']:g}{when}" + (f": {cfg}" if cfg else ""))
        lines.append("")
    lines += [
        "## Ops",
        "",
        "Unstructured ops (whole-image changes, no mask). Structured damage (scratches, holes, spots, stains,",
        "creases) and its masks are in the [catalogue](catalogue.md).",
        "",
        "Each picture: the photo, the op with the mild params, the op with the strong params.",
        "",
    ]
    for name, (mild, strong), path in examples:
        op = OPS[name]
        defaults = ", ".join(f"`{k}` = {_fmt(v)}" for k, v in op.defaults.items()) or "none"
        lines += [
            f"### `{name}`",
            "",
            op.doc,
            "",
            f"Config (defaults): {defaults}",
            "",
            f"Mild: `{json.dumps(mild)}`",
            "",
            f"Strong: `{json.dumps(strong)}`",
            "",
            f"![{name}]({path})",
            "",
        ]
    return "\n".join(lines)


def readme_pairs() -> None:
    names = ("astronaut", "chelsea", "coffee", "rocket")
    clean = [photo(n) for n in names]
    rows, labels = [clean], ["clean"]
    for preset, seed in (("old-photo", 11), ("bopbtl", 5), ("structured", 23)):
        d = Degrader(preset)
        samples = [d(img, np.random.default_rng(seed + i)) for i, img in enumerate(clean)]
        rows.append([s.degraded for s in samples])
        labels.append(preset)
    rows.append([np.repeat(s.mask[..., None], 3, axis=2) for s in samples])
    labels.append("structured: mask")
    grid(rows, labels).save(IMAGES / "readme-pairs.jpg", quality=88)


def old_photo_sheet() -> None:
    names = ["astronaut", "camera", "chelsea", "coffee", "coins", "motorcycle_left", "rocket", "moon"]  # scikit-image
    d = Degrader("old-photo")
    tiles = [d(photo(n, 192), np.random.default_rng(100 + k)).degraded for k, n in enumerate(names * 2)]
    grid([tiles[i : i + 4] for i in range(0, 16, 4)]).save(IMAGES / "old-photo-sheet.jpg", quality=88)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    readme_pairs()
    old_photo_sheet()
    examples = op_examples(photo("astronaut"))
    (ROOT / "docs" / "presets.md").write_text(presets_markdown(examples) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
