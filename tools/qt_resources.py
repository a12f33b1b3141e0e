"""Read the files inside a Qt resource bundle (`.rcc`), as GCompris ships its activity photos.

No packaged reader exists (Qt's `rcc` only compiles bundles), and the format is small: a header, a tree of
fixed-size entries, a name table and a data table (Qt's `rcc.cpp`, formats 1 to 3). Entry names come from
the bundle, so every path is checked to stay inside the folder it is extracted to.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath

_DIRECTORY = 0x02
_ZLIB = 0x01
_ZSTD = 0x04


def read_rcc(blob: bytes, source: str = "<rcc>") -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (relative path, contents) for every file of the bundle `blob`; `source` names it in errors.

    The tree is walked with an explicit stack and every entry may be reached once, so a crafted bundle whose
    directories point back at an ancestor (or share a child) is refused instead of recursing without end.
    """
    if blob[:4] != b"qres":
        raise ValueError(f"{source}: not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = _unpack(">IIII", blob, 4, source)
    if version not in (1, 2, 3):
        raise ValueError(f"{source}: Qt resource format {version} is not supported (1 to 3 are)")
    entry_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = _unpack(">H", blob, names + offset, source)
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 code units
        return blob[start : start + 2 * length].decode("utf-16-be")

    seen: set[int] = set()
    stack = [(0, PurePosixPath("."))]
    while stack:
        index, prefix = stack.pop()
        if index in seen:
            raise ValueError(f"{source}: tree entry {index} is reached twice (a cyclic or shared directory)")
        seen.add(index)
        entry = tree + index * entry_size
        name_offset, flags = _unpack(">IH", blob, entry, source)
        path = prefix / name(name_offset) if index else prefix
        if ".." in path.parts or path.is_absolute():
            raise ValueError(f"{source}: entry {str(path)!r} would leave the extraction folder")
        if flags & _DIRECTORY:
            count, first = _unpack(">II", blob, entry + 6, source)
            stack.extend((child, path) for child in reversed(range(first, first + count)))
            continue
        (offset,) = _unpack(">I", blob, entry + 10, source)
        (size,) = _unpack(">I", blob, data + offset, source)
        contents = blob[data + offset + 4 : data + offset + 4 + size]
        if len(contents) != size:
            raise ValueError(f"{source}: {path} is truncated ({len(contents)} of {size} bytes)")
        if flags & _ZSTD:
            raise ValueError(f"{source}: {path} is zstd-compressed, which this reader does not handle")
        if flags & _ZLIB:
            contents = zlib.decompress(contents[4:])  # a 4-byte uncompressed size precedes the stream
        yield path, contents


def _unpack(layout: str, blob: bytes, offset: int, source: str) -> tuple[int, ...]:
    """struct.unpack_from with the bundle named when it ends early (a truncated or corrupt file)."""
    try:
        return struct.unpack_from(layout, blob, offset)
    except struct.error:
        raise ValueError(f"{source}: truncated or corrupt (a field at byte {offset} lies past its end)") from None
