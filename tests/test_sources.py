"""Tests for degrade.sources and degrade.voc_download (no network: a local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import re
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from degrade import sources, voc_download
from degrade.sources import (
    DownloadError,
    ImageError,
    Source,
    SourceError,
    UnsafeArchiveError,
    download_voc,
    load_image,
    open_source,
    safe_extract,
)

ID_RE = re.compile(r"\A[A-Za-z0-9._-]+\Z")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def samples() -> Source:
    return open_source("sample")


@pytest.fixture(scope="module")
def photo(samples) -> np.ndarray:
    """A small real photo (a crop of astronaut), uint8 RGB."""
    item = next(it for it in samples.items if it.id == "astronaut")
    img, _ = load_image(item.path)
    return np.ascontiguousarray(img[64:192:2, 160:352:2])  # 64 x 96


def save(path: Path, img: Image.Image | np.ndarray, fmt: str | None = None, **kw) -> Path:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def encoded(img: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    return buf.getvalue()


def assert_one_line_about(exc: BaseException, path: Path, *words: str) -> None:
    msg = str(exc)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    for word in words:
        assert word in msg, msg


# --------------------------------------------------------------------------- load_image


def test_rgb_roundtrip_and_checksum(tmp_path, photo):
    p = save(tmp_path / "a.png", photo)
    img, digest = load_image(p)
    assert img.dtype == np.uint8 and img.shape == photo.shape
    assert img.flags.c_contiguous and img.flags.writeable
    np.testing.assert_array_equal(img, photo)
    assert digest == hashlib.sha256(p.read_bytes()).hexdigest()
    img2, _ = load_image(str(p))  # str paths work too
    np.testing.assert_array_equal(img2, photo)


def test_jpeg_loads_close_to_original(tmp_path, photo):
    p = save(tmp_path / "a.jpg", photo, quality=95)
    img, _ = load_image(p)
    assert img.shape == photo.shape
    assert np.abs(img.astype(int) - photo.astype(int)).mean() < 6


def test_truncated_jpeg(tmp_path, photo):
    data = encoded(photo, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "truncated or corrupt")
    assert info.value.path == str(p)


def test_truncated_png(tmp_path, photo):
    data = encoded(photo, "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "truncated or corrupt")


def test_png_cut_inside_header_is_corrupt_not_foreign(tmp_path, photo):
    p = tmp_path / "stub.png"
    p.write_bytes(encoded(photo, "PNG")[:30])
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "truncated or corrupt")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "empty file")


def test_non_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("these are my holiday notes,\nnot a photo\n")
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "not an image")
    assert "BytesIO" not in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "nope.jpg")
    assert_one_line_about(info.value, tmp_path / "nope.jpg", "not found")
    with pytest.raises(ImageError) as info:
        load_image(tmp_path)
    assert_one_line_about(info.value, tmp_path, "folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_permissions(tmp_path, photo):
    p = save(tmp_path / "locked.png", photo)
    p.chmod(0)
    try:
        with pytest.raises(ImageError) as info:
            load_image(p)
    finally:
        p.chmod(0o644)
    assert_one_line_about(info.value, p, "permission denied")


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    """Same path as above, for runs as root (where chmod 000 does not stop reads)."""

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources, "open", deny, raising=False)
    p = tmp_path / "locked.png"
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "permission denied")


def test_decompression_bomb_guard(tmp_path, photo, monkeypatch):
    p = save(tmp_path / "big.png", photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64*96 > 2*100: an error, not a warning
    with pytest.raises(ImageError) as info:
        load_image(p)
    assert_one_line_about(info.value, p, "decompression bomb")


def test_truncated_images_are_not_tolerated_globally():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_image_error_pickles_for_worker_processes(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(p)
    back = pickle.loads(pickle.dumps(info.value))
    assert isinstance(back, ImageError) and isinstance(back, ValueError)
    assert str(back) == str(info.value) and back.path == str(p) and back.reason == "empty file (0 bytes)"


def test_cmyk_jpeg(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 30, 30)
    rgb[:, 12:] = (30, 60, 200)
    p = save(tmp_path / "cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=95)
    assert Image.open(p).mode == "CMYK"
    img, _ = load_image(p)
    assert img.dtype == np.uint8 and img.shape == (16, 24, 3)
    assert np.abs(img[4:12, 2:10].astype(int) - (200, 30, 30)).max() < 20
    assert np.abs(img[4:12, 14:22].astype(int) - (30, 60, 200)).max() < 20


def test_16bit_gray_png_keeps_high_byte(tmp_path):
    values = np.array([[0, 0x00FF, 0x0100, 0x1234], [0x7FFF, 0x8000, 0xABCD, 0xFFFF]], np.uint16)
    p = save(tmp_path / "g16.png", values)
    assert Image.open(p).mode.startswith("I")
    img, _ = load_image(p)
    assert img.shape == (2, 4, 3) and img.dtype == np.uint8
    expected = (values >> 8).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], expected)  # 0x1234 -> 0x12, not clipped to 255


def test_16bit_gray_tiff_and_32bit_int(tmp_path):
    values = np.array([[0x0000, 0x1234, 0xFFFF]], np.uint16)
    img, _ = load_image(save(tmp_path / "g16.tif", values))
    np.testing.assert_array_equal(img[..., 0], [[0x00, 0x12, 0xFF]])
    ints = np.array([[-5, 0x1234, 70000]], np.int32)  # mode "I": clipped to 0..65535, then >> 8
    img, _ = load_image(save(tmp_path / "i32.tif", ints))
    np.testing.assert_array_equal(img[..., 1], [[0x00, 0x12, 0xFF]])


def test_16bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    bgr = np.empty((3, 5, 3), np.uint16)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 0x1234, 0x8000, 0xABCD
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), bgr)
    img, _ = load_image(p)
    assert img.dtype == np.uint8 and img.shape == (3, 5, 3)
    np.testing.assert_array_equal(img[0, 0], [0xAB, 0x80, 0x12])


def test_float_tiff(tmp_path):
    img, _ = load_image(save(tmp_path / "f.tif", np.array([[0.0, 0.5, 1.0]], np.float32)))
    np.testing.assert_array_equal(img[..., 2], [[0, 128, 255]])


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[0, :, 3] = (0, 128, 255)
    rgba[1, :, 3] = 255
    img, _ = load_image(save(tmp_path / "rgba.png", rgba))
    np.testing.assert_array_equal(img[0, 0], [255, 255, 255])  # transparent -> white
    np.testing.assert_array_equal(img[0, 2], [255, 0, 0])  # opaque -> colour
    assert img[0, 1, 0] == 255 and abs(int(img[0, 1, 1]) - 127) <= 1  # half: blended
    np.testing.assert_array_equal(img[1], [[255, 0, 0]] * 3)


def test_gray_alpha_composited(tmp_path):
    la = Image.fromarray(np.zeros((2, 2), np.uint8), "L").convert("LA")
    la.putalpha(Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)))
    img, _ = load_image(save(tmp_path / "la.png", la))
    np.testing.assert_array_equal(img[..., 0], [[255, 0], [0, 255]])


def test_palette_with_and_without_transparency(tmp_path, photo):
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p = save(tmp_path / "pal.png", pal)
    img, _ = load_image(p)
    np.testing.assert_array_equal(img, np.asarray(pal.convert("RGB")))

    small = Image.new("P", (2, 1))
    small.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    small.putpixel((0, 0), 0)
    small.putpixel((1, 0), 1)
    p2 = save(tmp_path / "pal_t.png", small, transparency=0)
    img2, _ = load_image(p2)
    np.testing.assert_array_equal(img2[0], [[255, 255, 255], [200, 100, 50]])

    gif = save(tmp_path / "pal.gif", small, transparency=0)  # any Pillow format decodes
    np.testing.assert_array_equal(load_image(gif)[0][0], [[255, 255, 255], [200, 100, 50]])


def test_gray_and_bilevel(tmp_path, photo):
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    img, _ = load_image(save(tmp_path / "gray.png", gray))
    assert img.shape == gray.shape + (3,)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)
    bw = Image.fromarray(gray).convert("1")
    img, _ = load_image(save(tmp_path / "bw.png", bw))
    assert set(np.unique(img)) <= {0, 255} and img.shape == gray.shape + (3,)


def test_exif_orientation_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # stored landscape: left red, right blue
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    p = save(tmp_path / "rot.jpg", im, exif=exif.tobytes(), quality=95)
    img, _ = load_image(p)
    assert img.shape == (40, 20, 3)  # portrait as displayed
    # Turning clockwise brings the stored left (red) edge to the top.
    assert np.abs(img[2:18, 4:16].astype(int) - (255, 0, 0)).max() < 40
    assert np.abs(img[22:38, 4:16].astype(int) - (0, 0, 255)).max() < 40


# --------------------------------------------------------------------------- sample


def test_sample_source(samples):
    ids = [it.id for it in samples.items]
    assert {"astronaut", "chelsea", "coffee"} <= set(ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert samples.kind == "sample" and samples.errors == []
    assert samples.description["kind"] == "sample"
    assert samples.description["count"] == len(ids)
    assert "scikit-image" in samples.description["packages"]
    astronaut = next(it for it in samples.items if it.id == "astronaut")
    assert astronaut.ref == "skimage/data/astronaut.png"
    assert astronaut.path.is_absolute()
    for it in samples.items:
        assert ID_RE.match(it.id)
        img, digest = load_image(it.path)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, it
        assert min(img.shape[:2]) >= 128 and len(digest) == 64


def test_sample_source_is_deterministic(samples):
    again = open_source("sample")
    assert again.items == samples.items and again.description == samples.description


# --------------------------------------------------------------------------- VOC


def make_voc(
    root: Path,
    photo: np.ndarray,
    year: str = "2012",
    splits: dict[str, str] | None = None,
    ids=("2008_000001", "2008_000002", "2008_000003", "2008_000004"),
) -> Path:
    voc = root / "VOCdevkit" / f"VOC{year}"
    jpegs = voc / "JPEGImages"
    jpegs.mkdir(parents=True)
    for k, vid in enumerate(ids):
        save(jpegs / f"{vid}.jpg", np.roll(photo, 7 * k, axis=1))
    main = voc / "ImageSets" / "Main"
    main.mkdir(parents=True)
    if splits is None:
        splits = {
            "train": "2008_000002\n2008_000001\n../../x\n/etc/passwd\n\n2008_000099\n2008_000001\n",
            "val": "2008_000003\n2008_000004\n",
        }
    for name, text in splits.items():
        (main / f"{name}.txt").write_text(text)
    (main / "aeroplane_train.txt").write_text("2008_000001 -1\n")
    return root / "VOCdevkit"


def test_voc_split_selection_and_refusals(tmp_path, photo):
    devkit = make_voc(tmp_path, photo)
    train = open_source("voc", voc_root=devkit, split="train")
    assert train.kind == "voc"
    assert [it.id for it in train.items] == ["2008_000001", "2008_000002"]
    assert [it.ref for it in train.items] == ["JPEGImages/2008_000001.jpg", "JPEGImages/2008_000002.jpg"]
    assert all(it.path.is_absolute() and it.path.is_file() for it in train.items)
    assert train.description == {
        "kind": "voc",
        "root": os.path.realpath(devkit),
        "year": "2012",
        "split": "train",
        "count": 2,
    }
    errors = {e["ref"]: e["error"] for e in train.errors}
    assert all("\n" not in m and m.startswith(r) for r, m in errors.items())
    assert "invalid VOC image id '../../x'" in errors["ImageSets/Main/train.txt:3"]
    assert "invalid VOC image id '/etc/passwd'" in errors["ImageSets/Main/train.txt:4"]
    assert "empty" in errors["ImageSets/Main/train.txt:5"]
    assert "missing" in errors["JPEGImages/2008_000099.jpg"]
    assert "duplicate" in errors["ImageSets/Main/train.txt:7"]
    assert len(train.errors) == 5

    val = open_source("voc", voc_root=devkit, split="val")
    assert [it.id for it in val.items] == ["2008_000003", "2008_000004"] and val.errors == []
    img, _ = load_image(val.items[0].path)
    assert img.shape == photo.shape


def test_voc_root_forms_agree(tmp_path, photo):
    devkit = make_voc(tmp_path, photo)
    a = open_source("voc", voc_root=devkit, split="val")
    b = open_source("voc", voc_root=tmp_path, split="val")
    c = open_source("voc", voc_root=str(tmp_path), year=2012, split="val")  # str/int tolerated
    assert a.items == b.items == c.items
    assert a.description == b.description == c.description


def test_voc2007_ids(tmp_path, photo):
    make_voc(
        tmp_path,
        photo,
        year="2007",
        ids=("000005", "000007"),
        splits={"trainval": "000005\n000007\n", "test": "000007\n"},
    )
    src = open_source("voc", voc_root=tmp_path, year="2007", split="trainval")
    assert [it.id for it in src.items] == ["000005", "000007"]
    assert src.description["year"] == "2007"


def test_voc_symlink_out_of_jpegimages_refused(tmp_path, photo):
    devkit = make_voc(tmp_path / "voc", photo, splits={"train": "2008_000001\n2008_000005\n"})
    outside = save(tmp_path / "secret.jpg", photo)
    (devkit / "VOC2012" / "JPEGImages" / "2008_000005.jpg").symlink_to(outside)
    src = open_source("voc", voc_root=devkit)
    assert [it.id for it in src.items] == ["2008_000001"]
    assert src.errors[0]["ref"] == "JPEGImages/2008_000005.jpg"
    assert "outside JPEGImages" in src.errors[0]["error"]


def test_voc_source_errors(tmp_path, photo):
    with pytest.raises(SourceError, match="needs the VOC root"):
        open_source("voc")
    with pytest.raises(SourceError, match="not found"):
        open_source("voc", voc_root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no VOC2012 found"):
        open_source("voc", voc_root=tmp_path / "empty")
    make_voc(tmp_path / "v", photo)
    with pytest.raises(SourceError, match="no VOC2007 found"):
        open_source("voc", voc_root=tmp_path / "v", year="2007")
    with pytest.raises(SourceError) as info:
        open_source("voc", voc_root=tmp_path / "v", split="trainval")
    msg = str(info.value)
    assert "split file not found" in msg and "available: train, val" in msg and "\n" not in msg
    with pytest.raises(SourceError, match="invalid VOC split"):
        open_source("voc", voc_root=tmp_path / "v", split="../../etc/x")
    with pytest.raises(SourceError, match="invalid VOC year"):
        open_source("voc", voc_root=tmp_path / "v", year="../2012")
    assert issubclass(SourceError, ValueError)


def test_voc_split_with_nothing_usable(tmp_path, photo):
    make_voc(tmp_path, photo, splits={"train": "../../../etc/passwd\n"})
    with pytest.raises(SourceError, match="no usable images"):
        open_source("voc", voc_root=tmp_path)


# --------------------------------------------------------------------------- folder


def test_folder_recursion_hidden_and_ignored(tmp_path, photo):
    root = tmp_path / "photos"
    save(root / "a.jpg", photo)
    save(root / "sub" / "b.png", photo)
    save(root / "sub" / "deeper" / "c.JPEG", photo)
    save(root / "sub" / "d.TiF", photo)
    save(root / "w.webp", photo)
    save(root / "m.bmp", photo)
    save(root / ".hidden.jpg", photo)
    save(root / ".cache" / "e.jpg", photo)
    save(root / "sub" / "._b.jpg", photo)
    save(root / "anim.gif", photo)  # not a listed extension: ignored, not an error
    (root / "notes.txt").write_text("hello")
    (root / "noext").write_bytes(b"\x89PNG")

    src = open_source(str(root))
    assert src.kind == "folder" and src.errors == []
    assert [it.ref for it in src.items] == ["a.jpg", "m.bmp", "sub/b.png", "sub/d.TiF", "sub/deeper/c.JPEG", "w.webp"]
    assert [it.id for it in src.items] == ["a", "m", "sub__b", "sub__d", "sub__deeper__c", "w"]
    assert all(it.path.is_absolute() and it.path.is_file() for it in src.items)
    assert src.description == {"kind": "folder", "root": os.path.realpath(root), "count": 6}
    for it in src.items:
        img, _ = load_image(it.path)
        assert img.shape == photo.shape
    assert open_source(root).items == src.items  # Path spec works too, same order


def test_folder_id_collisions_and_sanitising(tmp_path, photo):
    root = tmp_path / "p"
    for name in [
        "x.jpg",
        "x.png",
        "a b.jpg",
        "a_b.jpg",
        "A.jpg",
        "a.jpg",
        "sub/c.jpg",
        "sub__c.jpg",
        "Ünïcode name (1).jpg",
        "plain.jpg",
        "x_jpg.png",
    ]:
        save(root / name, photo)
    src = open_source(root)
    ids = {it.ref: it.id for it in src.items}
    assert len(ids) == 11
    assert all(ID_RE.match(i) for i in ids.values())
    lowered = [i.lower() for i in ids.values()]
    assert len(set(lowered)) == len(lowered)  # unique even on case-insensitive file systems
    assert ids["plain.jpg"] == "plain"
    assert ids["Ünïcode name (1).jpg"] == "_n_code_name__1_"
    assert ids["x.jpg"] == "x_jpg-2" and ids["x.png"] == "x_png" and ids["x_jpg.png"] == "x_jpg"
    for a, b in [("a b.jpg", "a_b.jpg"), ("A.jpg", "a.jpg"), ("sub/c.jpg", "sub__c.jpg")]:
        assert ids[a] != ids[b]
    assert ids["a b.jpg"].startswith("a_b-") and ids["sub/c.jpg"].startswith("sub__c-")
    # Stable: the same folder lists the same ids; an unrelated new file changes nothing.
    assert open_source(root).items == src.items
    save(root / "zzz.jpg", photo)
    again = {it.ref: it.id for it in open_source(root).items}
    assert {r: again[r] for r in ids} == ids


def test_folder_long_names_are_capped(tmp_path, photo):
    deep = tmp_path / "r" / ("d" * 60) / ("e" * 60) / ("f" * 60)
    save(deep / "g.jpg", photo)
    (item,) = open_source(tmp_path / "r").items
    assert len(item.id) <= 150 and ID_RE.match(item.id)


def test_folder_symlinks(tmp_path, photo):
    root = tmp_path / "root"
    save(root / "real" / "a.jpg", photo)
    outside = save(tmp_path / "outside" / "secret.jpg", photo)
    (root / "link_in.jpg").symlink_to(root / "real" / "a.jpg")  # same file again: listed once
    (root / "link_out.jpg").symlink_to(outside)
    (root / "dir_out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)  # cycle
    (root / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)  # inside: followed, deduped

    src = open_source(root)
    assert [it.ref for it in src.items] == ["real/a.jpg"]
    assert src.items[0].path == Path(os.path.realpath(root / "real" / "a.jpg"))
    errs = {e["ref"]: e["error"] for e in src.errors}
    assert set(errs) == {"link_out.jpg", "dir_out", "broken.jpg"}
    assert "outside the source folder" in errs["link_out.jpg"] and "broken" in errs["broken.jpg"]

    root2 = tmp_path / "root2"
    save(root2 / "top.jpg", photo)
    (root2 / "via").symlink_to(tmp_path / "root", target_is_directory=True)  # root2 -> outside
    assert [it.ref for it in open_source(root2).items] == ["top.jpg"]


def test_folder_errors(tmp_path, photo):
    with pytest.raises(SourceError, match="folder not found"):
        open_source(str(tmp_path / "missing"))
    p = save(tmp_path / "one.jpg", photo)
    with pytest.raises(SourceError, match="not a folder"):
        open_source(str(p))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images found") as info:
        open_source(str(tmp_path / "empty"))
    assert str(info.value).startswith(str(tmp_path / "empty"))
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    save(tmp_path / "texts" / ".hidden.jpg", photo)
    with pytest.raises(SourceError, match="no images found"):
        open_source(str(tmp_path / "texts"))


def test_folder_bad_image_is_listed_then_fails_on_load(tmp_path, photo):
    root = tmp_path / "p"
    save(root / "good.jpg", photo)
    (root / "bad.jpg").write_bytes(b"")
    src = open_source(root)
    assert [it.id for it in src.items] == ["bad", "good"]  # listing never decodes
    with pytest.raises(ImageError, match="empty file"):
        load_image(src.items[0].path)


# --------------------------------------------------------------------------- safe_extract


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file_member(name: str, data: bytes = b"data") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    "bad, reason",
    [
        (file_member("../evil"), "'..'"),
        (file_member("ok/../../evil"), "'..'"),
        (link_member("link", "../outside"), "outside"),
        (link_member("link", "/etc"), "absolute"),
        (link_member("hard", "../outside", tarfile.LNKTYPE), "outside"),
    ],
)
def test_safe_extract_refuses_escapes_before_writing(tmp_path, bad, reason):
    tar = make_tar(tmp_path / "bad.tar", [file_member("first.txt"), bad])
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match=reason) as info:
        safe_extract(tar, dest)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(tar))
    assert list(dest.iterdir()) == []  # refused before anything was written
    assert not (tmp_path / "evil").exists()


def test_safe_extract_refuses_absolute_path(tmp_path):
    target = tmp_path / "abs_evil.txt"
    tar = make_tar(tmp_path / "abs.tar", [file_member(str(target))])
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        safe_extract(tar, tmp_path / "dest")
    assert not target.exists()


def test_safe_extract_refuses_devices(tmp_path):
    dev = tarfile.TarInfo("dev/null2")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    for member in (dev, fifo):
        tar = make_tar(tmp_path / f"{member.name.replace('/', '_')}.tar", [(member, None)])
        with pytest.raises(UnsafeArchiveError, match="device or FIFO"):
            safe_extract(tar, tmp_path / "dest")


@pytest.fixture(params=["data_filter", "no_filter"])
def tar_filters(request, monkeypatch):
    """Run with tarfile's extraction filters, and as on Python < 3.11.4 (our checks alone)."""
    if request.param == "no_filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def test_safe_extract_refuses_escape_through_extracted_symlink(tmp_path, tar_filters):
    # "x" -> "." is harmless alone; "x/l" -> ".." then points above dest. Only a check
    # against the real paths on disk sees it.
    tar = make_tar(
        tmp_path / "chain.tar", [link_member("x", "."), link_member("x/l", ".."), file_member("x/l/escaped.txt")]
    )
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tar, dest)
    assert not (tmp_path / "escaped.txt").exists()


def test_safe_extract_accepts_a_clean_archive(tmp_path, tar_filters):
    sub = tarfile.TarInfo("top/sub")
    sub.type = tarfile.DIRTYPE
    sub.mode = 0o755
    tar = make_tar(
        tmp_path / "ok.tar",
        [
            (sub, None),
            file_member("top/sub/file.txt", b"hello"),
            link_member("top/link.txt", "sub/file.txt"),
            link_member("top/hard.txt", "top/sub/file.txt", tarfile.LNKTYPE),
        ],
    )
    dest = tmp_path / "dest"
    safe_extract(tar, dest)
    assert (dest / "top" / "sub" / "file.txt").read_bytes() == b"hello"
    assert (dest / "top" / "link.txt").read_bytes() == b"hello"
    assert (dest / "top" / "hard.txt").read_bytes() == b"hello"


def test_safe_extract_gzip_and_garbage(tmp_path):
    gz = tmp_path / "ok.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        info, data = file_member("a.txt", b"zip")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    safe_extract(gz, tmp_path / "d")
    assert (tmp_path / "d" / "a.txt").read_bytes() == b"zip"
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(DownloadError, match="tar archive"):
        safe_extract(junk, tmp_path / "d2")


# --------------------------------------------------------------------------- download_voc


class _Server:
    """A tiny threaded HTTP server for one payload, with Range support and fault injection."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.drop_next = 0  # this many GETs send only half the body, then hang up
        self.honor_range = True
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.path != "/voc.tar":
                    self.send_error(404)
                    return
                body, status, extra = server.payload, 200, {}
                rng = self.headers.get("Range")
                if rng and server.honor_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                    extra["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    body = body[start:]
                self.send_response(status)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                if server.drop_next:
                    server.drop_next -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/voc.tar"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def voc_tar(tmp_path, photo) -> bytes:
    """A miniature VOC2012 trainval archive, padded so a half transfer is meaningful."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("VOCdevkit/VOC2012/JPEGImages/2008_000001.jpg", encoded(photo, "JPEG"))
        add("VOCdevkit/VOC2012/JPEGImages/2008_000002.jpg", encoded(photo[::-1].copy(), "JPEG"))
        add("VOCdevkit/VOC2012/ImageSets/Main/train.txt", b"2008_000001\n2008_000002\n")
        add("VOCdevkit/VOC2012/ImageSets/Main/val.txt", b"2008_000002\n")
        add("VOCdevkit/VOC2012/padding.bin", os.urandom(64 * 1024))
    return buf.getvalue()


@pytest.fixture
def server(voc_tar, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = _Server(voc_tar)
    md5 = hashlib.md5(voc_tar).hexdigest()
    monkeypatch.setitem(
        voc_download.VOC_ARCHIVES,
        ("2012", "trainval"),
        voc_download.VocArchive("VOCtrainval_11-May-2012.tar", md5, (srv.url,)),
    )
    yield srv
    srv.close()


def test_download_extract_and_open(tmp_path, server, voc_tar):
    devkit = download_voc(tmp_path / "data", progress=False, retry_delay=0)
    assert devkit == tmp_path / "data" / "VOCdevkit"
    archive = tmp_path / "data" / "VOCtrainval_11-May-2012.tar"
    assert archive.read_bytes() == voc_tar
    assert not archive.with_name(archive.name + ".part").exists()
    src = open_source("voc", voc_root=tmp_path / "data", split="train")
    assert [it.id for it in src.items] == ["2008_000001", "2008_000002"]
    assert len(server.requests) == 1 and server.requests[0]["range"] is None
    # Done once: a second call neither downloads nor extracts again.
    assert download_voc(tmp_path / "data", progress=False) == devkit
    assert len(server.requests) == 1


def test_download_interrupted_then_resumed(tmp_path, server, voc_tar):
    root = tmp_path / "data"
    part = root / "VOCtrainval_11-May-2012.tar.part"
    server.drop_next = 1
    with pytest.raises(DownloadError) as info:
        download_voc(root, progress=False, retries=0, retry_delay=0)
    msg = str(info.value)
    assert "\n" not in msg and "kept" in msg and "resume" in msg
    half = len(voc_tar) // 2
    assert part.stat().st_size == half
    assert not (root / "VOCdevkit").exists()

    devkit = download_voc(root, progress=False, retries=0, retry_delay=0)
    assert server.requests[-1]["range"] == f"bytes={half}-"
    assert (root / "VOCtrainval_11-May-2012.tar").read_bytes() == voc_tar
    assert not part.exists()
    assert (devkit / "VOC2012" / "ImageSets" / "Main" / "val.txt").is_file()


def test_download_resumes_within_one_call(tmp_path, server, voc_tar):
    server.drop_next = 2
    download_voc(tmp_path, progress=False, retries=3, retry_delay=0)
    first = len(voc_tar) // 2  # each dropped transfer delivers half of what it was asked for
    second = first + (len(voc_tar) - first) // 2
    assert [r["range"] for r in server.requests] == [None, f"bytes={first}-", f"bytes={second}-"]
    assert (tmp_path / "VOCtrainval_11-May-2012.tar").read_bytes() == voc_tar


def test_download_restarts_when_server_ignores_range(tmp_path, server, voc_tar):
    server.honor_range = False
    part = tmp_path / "VOCtrainval_11-May-2012.tar.part"
    part.write_bytes(b"stale bytes from somewhere else")
    download_voc(tmp_path, progress=False, retry_delay=0)
    assert server.requests[0]["range"] == f"bytes={len(b'stale bytes from somewhere else')}-"
    assert (tmp_path / "VOCtrainval_11-May-2012.tar").read_bytes() == voc_tar


def test_download_complete_part_gets_416_and_verifies(tmp_path, server, voc_tar):
    (tmp_path / "VOCtrainval_11-May-2012.tar.part").write_bytes(voc_tar)
    download_voc(tmp_path, progress=False, retry_delay=0)
    assert server.requests[0]["range"] == f"bytes={len(voc_tar)}-"
    assert (tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2008_000001.jpg").is_file()


def test_download_md5_mismatch(tmp_path, server, monkeypatch):
    monkeypatch.setitem(
        voc_download.VOC_ARCHIVES,
        ("2012", "trainval"),
        voc_download.VocArchive("VOCtrainval_11-May-2012.tar", "0" * 32, (server.url,)),
    )
    with pytest.raises(DownloadError) as info:
        download_voc(tmp_path, progress=False, retry_delay=0)
    msg = str(info.value)
    assert "MD5 mismatch" in msg and "0" * 32 in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []  # bad download removed, nothing extracted


def test_download_url_override_and_404(tmp_path, server):
    devkit = download_voc(tmp_path / "a", progress=False, url=server.url, retry_delay=0)
    assert (devkit / "VOC2012").is_dir()
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_voc(tmp_path / "b", progress=False, url=server.url.replace("voc.tar", "nope.tar"), retry_delay=0)


def test_download_existing_archive_is_verified(tmp_path, server, voc_tar):
    (tmp_path / "VOCtrainval_11-May-2012.tar").write_bytes(voc_tar[:-1] + b"X")
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        download_voc(tmp_path, progress=False)
    assert server.requests == []


def test_download_unknown_archive(tmp_path):
    with pytest.raises(DownloadError, match="no Pascal VOC archive"):
        download_voc(tmp_path, year="2010", progress=False)
    with pytest.raises(DownloadError, match="no Pascal VOC archive"):
        download_voc(tmp_path, year="2012", image_set="test", progress=False)


def test_official_archive_table():
    table = voc_download.VOC_ARCHIVES
    assert table[("2012", "trainval")].md5 == "6cd6e144f989b92b3379bac3b3de84fd"
    assert table[("2007", "trainval")].md5 == "c52e279531787c972589f7e41ab4ae64"
    assert table[("2007", "test")].md5 == "b6e924de25625d8de591ea690078ad9f"
    for archive in table.values():
        assert archive.urls[0].startswith("http://host.robots.ox.ac.uk/pascal/VOC/")
        assert all(u.endswith("/" + archive.filename) for u in archive.urls)
