"""Op-specific properties of the scratch and crease ops (the shared contract is in test_structured.py):
film scratches run near-vertically and vary along their length, scuffs come in parallel clusters,
cracks branch, meander and taper, folds shade their two sides oppositely with a thin mask, crazing
stays in its patch, and every op damages about the same share of a picture at any size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from degrade.ops import OPS
from degrade.ops.creases import _voronoi_edges
from degrade.ops.scratches import _film_scratch, _grow_crack, _scuff_cluster, crack_path

NAMES = ["film_scratches", "scuffs", "cracks", "fold", "crazing"]


def grey(shape: tuple[int, int]) -> np.ndarray:
    return np.full((*shape, 3), 0.5, dtype=np.float32)


def render(name: str, shape: tuple[int, int], seed: int, **overrides: object) -> tuple[np.ndarray, np.ndarray, dict]:
    op = OPS[name]
    params = op.sample(np.random.default_rng(seed), shape, {**op.defaults, **overrides})
    out, mask = op.apply(grey(shape), params)
    return out, mask, params


def test_labels() -> None:
    assert [OPS[name].label for name in NAMES] == [1, 1, 1, 5, 5]


def test_film_scratches_run_near_vertically_through_the_frame() -> None:
    op = OPS["film_scratches"]
    cfg = {**op.defaults, "count": [1, 1], "full_length_probability": 1.0, "breaks": 0.0}
    for seed in range(4):
        params = op.sample(np.random.default_rng(seed), (256, 192), cfg)
        params["scratches"][0]["x"] = 96.0  # mid-frame, so it cannot leave through a side
        out, _ = op.apply(grey((256, 192)), params)
        rows, cols = np.nonzero(np.abs(out - 0.5).max(axis=2) > 2 / 255)
        assert np.ptp(rows) > 0.8 * 256, "a full-length scratch spans the height"
        assert np.ptp(cols) < 0.12 * 192, "and wanders sideways only a little"


def test_film_scratches_vary_along_their_length_and_fade_at_the_ends() -> None:
    scratch = {"x": 50.0, "y0": 20.0, "y1": 220.0, "angle": 1.0, "bright": True, "width": 2.0, "opacity": 1.0}
    points, widths, opacities = _film_scratch(
        np.random.default_rng(0), {**scratch, "wobble": 2.0, "fade": 0.2, "breaks": 0}, 0.5
    )
    assert widths.std() / widths.mean() > 0.1 and widths.max() <= 2.0
    assert opacities[0] == opacities[-1] == 0.0 and opacities.max() > 0.6
    assert np.all(np.diff(points[:, 1]) > 0), "a film scratch runs down the frame"


def test_film_scratch_polarity_follows_bright_probability() -> None:
    for p, sign in ((1.0, 1.0), (0.0, -1.0)):
        out, mask, _ = render("film_scratches", (128, 128), 1, bright_probability=p, count=[3, 3])
        assert mask.any() and np.all(np.sign(out[mask].mean(axis=1) - 0.5) == sign)


def test_scuffs_are_short_and_roughly_parallel_in_a_cluster() -> None:
    cluster = {
        "x": 100.0, "y": 100.0, "angle": 30.0, "length": 40.0, "spread": 10.0, "width": 1.0, "opacity": 1.0,
        "strokes": 20,
    }  # fmt: skip
    strokes = _scuff_cluster(np.random.default_rng(0), cluster, 1.0)
    assert len(strokes) == 20
    for points, _, opacities in strokes:
        chord = points[-1] - points[0]
        angle = math.degrees(math.atan2(chord[1], chord[0])) % 180.0
        assert abs(angle - 30.0) < 25.0 and np.linalg.norm(chord) <= 40.0
        assert opacities[0] < 0.5 * opacities.max() or opacities[-1] < 0.5 * opacities.max(), "strokes fade out"


def test_cracks_meander_branch_and_taper() -> None:
    path = crack_path(np.random.default_rng(0), np.zeros(2), 0.0, 200.0, 2.5)
    turns = np.abs(np.diff(np.arctan2(*np.diff(path, axis=0).T[::-1])))
    assert np.median(turns) > 0.05, "jagged, never ruler-straight"
    strokes: list = []
    _grow_crack(np.random.default_rng(1), strokes, np.zeros(2), 0.0, 300.0, 1.5, 1.0, 0.03, 2, 2.5)
    assert len(strokes) > 3, "a crack with a high branch rate branches"
    for _, widths, _ in strokes:
        assert widths[-1] <= widths[: max(1, len(widths) // 4)].mean(), "width tapers toward the tip"
    assert max(w.max() for _, w, _ in strokes[1:]) < strokes[0][1].max() + 1e-6, "branches are thinner"


def test_cracks_are_bright_more_often_than_dark() -> None:
    params = [OPS["cracks"].sample(np.random.default_rng(s), (128, 128), OPS["cracks"].defaults) for s in range(30)]
    bright = [c["bright"] for p in params for c in p["cracks"]]
    assert 0.5 < np.mean(bright) < 0.85


def test_fold_shades_its_two_sides_oppositely_and_masks_only_the_ridge() -> None:
    shape = (200, 160)
    op = OPS["fold"]
    params = op.sample(np.random.default_rng(0), shape, {**op.defaults, "axis_probability": 1.0})
    fold = {**params["folds"][0], "x": 80.0, "y": 100.0, "angle": 0.0, "bow": 0.0, "shade": 0.15, "falloff": 10.0}
    out, mask = op.apply(grey(shape), {**params, "folds": [fold]})
    change = out.mean(axis=2) - 0.5
    above, below = change[80:95].mean(), change[106:120].mean()
    assert above * below < 0 and min(abs(above), abs(below)) > 0.005, "one side lighter, the other darker"
    assert np.sign(below) == fold["lit_side"], "the lit side is the one `lit_side` names"
    rows = np.nonzero(mask)[0]
    assert len(rows) and np.all(np.abs(rows - 100) <= 5), "the mask is the crack and the crest, not the shading"


def test_fold_is_mostly_along_the_axes() -> None:
    angles = [
        f["angle"]
        for s in range(40)
        for f in OPS["fold"].sample(np.random.default_rng(s), (100, 100), OPS["fold"].defaults)["folds"]
    ]
    off_axis = np.minimum(np.abs(np.asarray(angles)) % 90.0, 90.0 - np.abs(np.asarray(angles)) % 90.0)
    assert np.mean(off_axis < 10.0) > 0.7


def test_crazing_stays_in_its_patch() -> None:
    for seed in range(4):
        _, mask, params = render("crazing", (256, 256), seed, whole_probability=0.0, opacity=[1.0, 1.0])
        ys, xs = np.nonzero(mask)
        distance = np.hypot(xs - params["x"], ys - params["y"])
        assert distance.max(initial=0.0) <= 1.6 * params["radius"] + 2.0


def test_crazing_cells_match_the_cell_size() -> None:
    rng = np.random.default_rng(0)
    cell = 20.0
    gy, gx = np.mgrid[0:400:cell, 0:400:cell]
    seeds = np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.uniform(-0.5, 0.5, (gx.size, 2)) * cell
    starts, ends = _voronoi_edges(seeds)
    lengths = np.linalg.norm(ends - starts, axis=1)
    assert 0.2 * cell < np.median(lengths) < cell, "cell walls are a fraction of the cell size"
    assert len(starts) < 3.2 * len(seeds), "a planar network: about three walls per cell"


@pytest.mark.parametrize("name", NAMES)
def test_damage_per_area_is_about_the_same_at_any_size(name: str) -> None:
    """Geometry scales with the image: the mean change of a grey picture (stroke area times contrast,
    which sub-pixel strokes keep as fainter lines) hardly depends on its size."""

    def ink(shape: tuple[int, int]) -> float:
        return float(np.mean([np.abs(render(name, shape, seed)[0] - 0.5).mean() for seed in range(8)]))

    small, large = ink((256, 256)), ink((768, 768))
    assert 0.5 < small / large < 2.0, f"{name}: {small:.5f} at 256 vs {large:.5f} at 768"
