"""Fetch and unpack the Pascal VOC archives: resumable HTTP download, MD5 check, safe extraction.

Standard library only (urllib, tarfile) plus tqdm for the progress bar. The archive
table `VOC_ARCHIVES` is module-level data so that tests (and users behind a mirror)
can point it elsewhere; `download_voc(..., url=...)` overrides the URL for one call.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VOC_ARCHIVES",
    "DownloadError",
    "UnsafeArchiveError",
    "VocArchive",
    "download_voc",
    "safe_extract",
]


class DownloadError(RuntimeError):
    """A download, checksum or extraction failure; the message is one line."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the destination (or is a device file)."""


@dataclass(frozen=True)
class VocArchive:
    """One official VOC tar: its file name, MD5 and the URLs to try in order."""

    filename: str
    md5: str
    urls: tuple[str, ...]


_OFFICIAL = "http://host.robots.ox.ac.uk/pascal/VOC"
_MIRROR = "https://pjreddie.com/media/files"  # widely used mirror; the MD5 check guards it

#: (year, image_set) -> archive. Every archive unpacks into ``VOCdevkit/VOC{year}``.
VOC_ARCHIVES: dict[tuple[str, str], VocArchive] = {
    ("2012", "trainval"): VocArchive(
        "VOCtrainval_11-May-2012.tar",
        "6cd6e144f989b92b3379bac3b3de84fd",
        (f"{_OFFICIAL}/voc2012/VOCtrainval_11-May-2012.tar", f"{_MIRROR}/VOCtrainval_11-May-2012.tar"),
    ),
    ("2007", "trainval"): VocArchive(
        "VOCtrainval_06-Nov-2007.tar",
        "c52e279531787c972589f7e41ab4ae64",
        (f"{_OFFICIAL}/voc2007/VOCtrainval_06-Nov-2007.tar", f"{_MIRROR}/VOCtrainval_06-Nov-2007.tar"),
    ),
    ("2007", "test"): VocArchive(
        "VOCtest_06-Nov-2007.tar",
        "b6e924de25625d8de591ea690078ad9f",
        (f"{_OFFICIAL}/voc2007/VOCtest_06-Nov-2007.tar", f"{_MIRROR}/VOCtest_06-Nov-2007.tar"),
    ),
}

_CHUNK = 1 << 20
_USER_AGENT = "patina-degrade (Python urllib)"


def download_voc(
    root: str | os.PathLike,
    year: str = "2012",
    *,
    progress: bool = True,
    image_set: str = "trainval",
    url: str | None = None,
    retries: int = 3,
    retry_delay: float = 2.0,
    timeout: float = 60.0,
    keep_archive: bool = True,
) -> Path:
    """Download, verify and unpack a Pascal VOC archive into `root`; return ``root/VOCdevkit``.

    `year` and `image_set` pick the archive: ``("2012", "trainval")`` (default),
    ``("2007", "trainval")`` or ``("2007", "test")``; the 2007 test archive unpacks
    into the same ``VOCdevkit/VOC2007`` tree as its trainval archive. The download
    goes to ``root/<archive>.part`` and resumes from it with an HTTP Range request
    after an interruption (in this call, up to `retries` times, or in a later call);
    the finished file's MD5 is checked before it is renamed into place and unpacked
    with `safe_extract`. `url` replaces the archive's URL list for this call. A
    finished extraction leaves a marker, so calling again returns at once. An archive
    already present in `root` (for example copied by hand) is verified and used.

    Raises `DownloadError` with a one-line message (network failure with the partial
    file kept, MD5 mismatch with the bad file removed, unsafe or unreadable archive).
    """
    year = str(year)
    key = (year, image_set)
    if key not in VOC_ARCHIVES:
        known = ", ".join(f"{y} {s}" for y, s in VOC_ARCHIVES)
        raise DownloadError(f"no Pascal VOC archive for year {year!r}, image set {image_set!r} (known: {known})")
    archive_info = VOC_ARCHIVES[key]
    urls = (url,) if url else archive_info.urls

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    devkit = root / "VOCdevkit"
    marker = root / f".{archive_info.filename}.extracted"
    if marker.is_file() and (devkit / f"VOC{year}").is_dir():
        return devkit

    archive = root / archive_info.filename
    if archive.is_file():
        got = file_md5(archive)
        if got != archive_info.md5:
            raise DownloadError(
                f"{archive}: MD5 mismatch (expected {archive_info.md5}, got {got}); "
                "delete the file and run again to download it afresh"
            )
    else:
        _download(
            urls,
            archive,
            archive_info.md5,
            progress=progress,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
        )

    safe_extract(archive, root, progress=progress)
    if not (devkit / f"VOC{year}").is_dir():
        raise DownloadError(f"{archive}: the archive did not contain VOCdevkit/VOC{year}")
    marker.write_text(archive_info.md5 + "\n")
    if not keep_archive:
        archive.unlink()
    return devkit


def file_md5(path: str | os.PathLike) -> str:
    """MD5 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _Retryable(Exception):
    """A transfer that stopped early; the .part file holds what arrived."""


class _Permanent(Exception):
    """This URL will not work (404 and friends); try the next one."""


def _download(urls, dest: Path, md5: str, *, progress: bool, retries: int, retry_delay: float, timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    problems: list[str] = []
    for url in urls:
        if not _fetch_with_retries(
            url, part, problems, progress=progress, retries=retries, retry_delay=retry_delay, timeout=timeout
        ):
            continue  # this URL failed; try the next one
        got = file_md5(part)
        if got == md5:
            os.replace(part, dest)
            return
        part.unlink()
        problems.append(f"{url}: MD5 mismatch (expected {md5}, got {got}); the bad download was removed")

    kept = f"; the partial download {part} is kept, run again to resume" if part.exists() else ""
    raise DownloadError(f"could not download {dest.name}: {'; '.join(problems)}{kept}")


def _fetch_with_retries(
    url: str, part: Path, problems: list[str], *, progress: bool, retries: int, retry_delay: float, timeout: float
) -> bool:
    """Fetch `url` into `part`, resuming after each failure; False (noted in `problems`) on giving up."""
    import http.client
    import urllib.error

    attempt = 0
    while True:
        try:
            _fetch(url, part, progress=progress, timeout=timeout)
            return True
        except _Permanent as exc:
            problems.append(f"{url}: {exc}")
            return False
        except (_Retryable, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            attempt += 1
            if attempt > retries:
                problems.append(f"{url}: {_reason(exc)}")
                return False
            time.sleep(min(retry_delay * 2 ** (attempt - 1), 60.0))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return " ".join(text.split())


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _fetch(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """Bring `part` up to the full file, resuming from its current size."""
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    opener = urllib.request.build_opener()  # reads proxy settings from the environment now
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return  # nothing left to fetch: the part is complete (the MD5 check decides)
        if exc.code in (401, 403, 404, 410):
            raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
        raise _Retryable(f"HTTP {exc.code} {exc.reason}") from None

    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206 and offset:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink()  # a range we did not ask for: start over on the next attempt
                raise _Retryable("server answered with an unexpected byte range")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        elif status == 200:
            offset, mode = 0, "wb"  # no resume support here: start from the beginning
            total = length
        else:
            raise _Permanent(f"unexpected HTTP status {status}")

        received = 0
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[: -len(".part")],
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if length is not None and received < length:
        raise _Retryable(f"connection closed after {offset + received} of {offset + length} bytes")


# --------------------------------------------------------------------------- extraction


_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python >= 3.11.4


def _is_inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _check_member_names(member: tarfile.TarInfo) -> str | None:
    """Reasons to refuse a member, judged from the archive alone (before writing anything)."""
    name = member.name
    if not name or "\x00" in name:
        return "empty or invalid name"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or os.path.isabs(name):
        return "absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "parent-folder reference ('..') in its path"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device or FIFO file"
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return f"unsupported member type {member.type!r}"
    if member.issym() or member.islnk():
        link = member.linkname
        if not link or link.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", link) or os.path.isabs(link):
            return f"link to an absolute path {link!r}"
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, link))
        if target == ".." or target.startswith("../"):
            return f"link pointing outside the destination ({link!r})"
    return None


def _check_member_on_disk(member: tarfile.TarInfo, root: str) -> str | None:
    """Reasons to refuse a member given what is already on disk (symlinks extracted earlier)."""
    target = os.path.realpath(os.path.join(root, member.name))
    if not _is_inside(target, root):
        return "path escapes the destination through a symlink"
    if member.issym():
        parent = os.path.realpath(os.path.join(root, os.path.dirname(member.name)))
        if not _is_inside(os.path.realpath(os.path.join(parent, member.linkname)), root):
            return f"symlink pointing outside the destination ({member.linkname!r})"
    if member.islnk():
        if not _is_inside(os.path.realpath(os.path.join(root, member.linkname)), root):
            return f"hard link pointing outside the destination ({member.linkname!r})"
    return None


def safe_extract(tar_path: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = False) -> None:
    """Extract a tar archive (any compression tarfile reads) below `dest`, refusing escapes.

    Every member is checked before anything is written: absolute paths, ``..``
    components, device/FIFO members and links (symbolic or hard) whose target leaves
    `dest` are refused. While extracting, each member is checked again against the
    real paths on disk (a link extracted earlier cannot be used as a way out) and,
    where Python supports it, passed through tarfile's ``"data"`` filter, which also
    drops set-uid bits and ownership. Raises `UnsafeArchiveError` naming the member,
    or `DownloadError` for an unreadable archive.
    """
    tar_path = Path(tar_path)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    try:
        tar = tarfile.open(tar_path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"{tar_path}: not a readable tar archive ({_reason(exc)})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"{tar_path}: damaged tar archive ({_reason(exc)})") from None
        for member in members:
            reason = _check_member_names(member)
            if reason:
                raise UnsafeArchiveError(f"{tar_path}: refusing member {member.name!r}: {reason}")

        def refuse_on_disk(member: tarfile.TarInfo) -> None:
            reason = _check_member_on_disk(member, root)
            if reason:
                raise UnsafeArchiveError(f"{tar_path}: refusing member {member.name!r}: {reason}")

        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(members), unit="file", desc=f"extracting {tar_path.name}", disable=not progress, leave=False
        )
        try:
            if hasattr(tarfile, "data_filter"):

                def member_filter(member: tarfile.TarInfo, path: str):
                    refuse_on_disk(member)
                    bar.update(1)
                    return tarfile.data_filter(member, path)

                tar.extractall(root, members=members, filter=member_filter)
            else:  # Python 3.11.0-3.11.3: no extraction filters; our checks alone

                def checked():
                    for member in members:
                        refuse_on_disk(member)
                        bar.update(1)
                        yield member

                tar.extractall(root, members=checked())
        except UnsafeArchiveError:
            raise
        except _FILTER_ERROR as exc:
            raise UnsafeArchiveError(f"{tar_path}: refusing member: {_reason(exc)}") from None
        except (tarfile.TarError, EOFError) as exc:
            raise DownloadError(f"{tar_path}: damaged tar archive ({_reason(exc)})") from None
        finally:
            bar.close()
