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
    """Yield (relative path, contents) for every file of the bundle `blob`; `source` names it in errors."""
    if blob[:4] != b"qres":
        raise ValueError(f"{source}: not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise ValueError(f"{source}: Qt resource format {version} is not supported (1 to 3 are)")
    entry_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 code units
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, bytes]]:
        entry = tree + index * entry_size
        name_offset, flags = struct.unpack(">IH", blob[entry : entry + 6])
        path = prefix / name(name_offset) if index else prefix
        if ".." in path.parts or path.is_absolute():
            raise ValueError(f"{source}: entry {str(path)!r} would leave the extraction folder")
        if flags & _DIRECTORY:
            count, first = struct.unpack(">II", blob[entry + 6 : entry + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", blob[entry + 10 : entry + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        contents = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & _ZSTD:
            raise ValueError(f"{source}: {path} is zstd-compressed, which this reader does not handle")
        if flags & _ZLIB:
            contents = zlib.decompress(contents[4:])  # a 4-byte uncompressed size precedes the stream
        yield path, contents

    yield from walk(0, PurePosixPath("."))
