"""Read a GGUF file's header and metadata, never its tensors.

GGUF (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), versions 2 and 3, is
little-endian: magic ``GGUF``, uint32 version, uint64 tensor_count, uint64 metadata_kv_count,
then the key/value pairs (a gguf_string key, a uint32 value type, the value). Tensor infos and
tensor data come after the metadata and are not read: a model's shape is in the metadata.

Every length and count is checked before it is used, against the spec (keys are at most
65535 bytes) and against the file: a count that could not fit in the bytes left, a string
longer than `MAX_STRING_BYTES` or metadata longer than ``max_header_bytes`` raise `GGUFError`
naming the file, the field and its offset, instead of allocating or reading without bound.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "GGUFArray",
    "GGUFError",
    "GGUFHeader",
    "GGUFValue",
    "read_gguf_header",
]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # v1 used 32-bit counts and lengths; it predates every current model
# Real models carry 20-60 keys and at most a few MB of tokenizer arrays (a 256k-token
# vocabulary plus its scores); these bounds are far above that and far below harm.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_KV_COUNT = 1 << 16
MAX_TENSOR_COUNT = 1 << 20
MAX_KEY_BYTES = 65535  # spec: "a key ... must be at most 2^16-1 bytes"
MAX_STRING_BYTES = 16 * 1024 * 1024
MAX_ARRAY_DEPTH = 3
# Numeric arrays up to this length keep their values (per-layer head counts, for example);
# longer ones and string arrays keep only their type and length.
KEEP_ARRAY_VALUES = 4096
_CHUNK = 64 * 1024

# gguf_metadata_value_type -> (struct format, size) for fixed-size types.
_FIXED: dict[int, tuple[str, int]] = {
    0: ("<B", 1),  # UINT8
    1: ("<b", 1),  # INT8
    2: ("<H", 2),  # UINT16
    3: ("<h", 2),  # INT16
    4: ("<I", 4),  # UINT32
    5: ("<i", 4),  # INT32
    6: ("<f", 4),  # FLOAT32
    7: ("<?", 1),  # BOOL
    10: ("<Q", 8),  # UINT64
    11: ("<q", 8),  # INT64
    12: ("<d", 8),  # FLOAT64
}
_STRING = 8
_ARRAY = 9
_U64 = struct.Struct("<Q")
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}


class GGUFError(ValueError):
    """A GGUF header that is not valid or exceeds a bound; names file, field and offset."""

    def __init__(self, path: str, field: str, offset: int | None, problem: str) -> None:
        where = "" if offset is None else f" at byte {offset}"
        super().__init__(f"{path}: GGUF {field}{where}: {problem}")
        self.path = path
        self.field = field
        self.offset = offset


@dataclass(frozen=True)
class GGUFArray:
    """An array value: item type name, length, and the values when short and numeric."""

    item_type: str
    length: int
    values: tuple[int | float | bool, ...] | None = None


GGUFValue = int | float | bool | str | GGUFArray


@dataclass(frozen=True)
class GGUFHeader:
    """The header and metadata of one GGUF file; `header_bytes` is where tensor infos start."""

    path: str
    version: int
    tensor_count: int
    metadata: dict[str, GGUFValue] = field(repr=False)
    header_bytes: int


class _Reader:
    """Bounded little-endian reads from a binary stream, buffered in 64 KiB chunks."""

    def __init__(self, stream: BinaryIO, name: str, size: int | None, limit: int) -> None:
        self._stream = stream
        self._name = name
        self._size = size  # file size when known: lets counts be checked against it
        self._limit = limit
        self._buf = b""
        self._start = 0  # file offset of _buf[0]
        self._pos = 0  # offset in _buf
        self.field = "header"

    @property
    def offset(self) -> int:
        return self._start + self._pos

    def error(self, problem: str, offset: int | None = None) -> GGUFError:
        return GGUFError(self._name, self.field, self.offset if offset is None else offset, problem)

    def remaining_in_file(self) -> int | None:
        return None if self._size is None else self._size - self.offset

    def _ensure(self, n: int) -> None:
        if self.offset + n > self._limit:
            raise self.error(f"metadata would exceed max_header_bytes={self._limit}")
        missing = n - (len(self._buf) - self._pos)
        if missing <= 0:
            return
        self._buf = self._buf[self._pos :]
        self._start += self._pos
        self._pos = 0
        chunks = [self._buf]
        have = len(self._buf)
        while have < n:
            want = max(n - have, min(_CHUNK, self._limit - self._start - have))
            chunk = self._stream.read(want)
            if not chunk:
                raise self.error(f"file ends early: needed {n} bytes, {have} left")
            chunks.append(chunk)
            have += len(chunk)
        self._buf = b"".join(chunks)

    def take(self, n: int) -> bytes:
        self._ensure(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def skip(self, n: int) -> None:
        self._ensure(n)
        self._pos += n

    def unpack(self, fmt: str, size: int) -> int | float | bool:
        self._ensure(size)
        (value,) = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += size
        return value  # type: ignore[no-any-return]

    def fixed_array(
        self, item_type: int, length: int, keep: bool
    ) -> tuple[int | float | bool, ...]:
        """`length` fixed-size items in one unpack (or one skip when not kept)."""
        fmt, size = _FIXED[item_type]
        if not keep:
            self.skip(length * size)
            return ()
        self._ensure(length * size)
        values = struct.unpack_from(f"<{length}{fmt[1]}", self._buf, self._pos)
        self._pos += length * size
        return values

    def skip_strings(self, count: int, max_bytes: int) -> None:
        """Skip `count` strings, walking the buffer directly (vocabularies hold 100k+)."""
        done = 0
        while done < count:
            self._ensure(8)
            buf, pos, end = self._buf, self._pos, len(self._buf)
            while done < count and pos + 8 <= end:
                (length,) = _U64.unpack_from(buf, pos)
                if length > max_bytes or pos + 8 + length > end:
                    break
                pos += 8 + length
                done += 1
            self._pos = pos
            if done < count and (end - pos < 8 or pos + 8 + _U64.unpack_from(buf, pos)[0] > end):
                self.string(max_bytes, keep=False)  # crosses the buffer end, or is too long
                done += 1

    def u32(self) -> int:
        return int(self.unpack("<I", 4))

    def u64(self) -> int:
        return int(self.unpack("<Q", 8))

    def string(self, max_bytes: int, keep: bool = True) -> str:
        start = self.offset
        length = self.u64()
        if length > max_bytes:
            raise self.error(f"string length {length} exceeds {max_bytes}", start)
        if not keep:
            self.skip(length)
            return ""
        data = self.take(length)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"string is not UTF-8 ({exc.reason})", start) from None


def _value_type(reader: _Reader) -> int:
    start = reader.offset
    value_type = reader.u32()
    if value_type not in _FIXED and value_type not in (_STRING, _ARRAY):
        raise reader.error(f"unknown value type {value_type} (allowed 0..12)", start)
    return value_type


def _read_array(reader: _Reader, depth: int) -> GGUFArray:
    if depth > MAX_ARRAY_DEPTH:
        raise reader.error(f"arrays nested deeper than {MAX_ARRAY_DEPTH}")
    item_type = _value_type(reader)
    start = reader.offset
    length = reader.u64()
    min_item = _FIXED[item_type][1] if item_type in _FIXED else (8 if item_type == _STRING else 12)
    remaining = reader.remaining_in_file()
    if remaining is not None and length * min_item > remaining:
        raise reader.error(
            f"array of {length} {_TYPE_NAMES[item_type]} items cannot fit in the"
            f" {remaining} bytes left in the file",
            start,
        )
    keep = item_type in _FIXED and length <= KEEP_ARRAY_VALUES
    values: tuple[int | float | bool, ...] = ()
    if item_type in _FIXED:
        values = reader.fixed_array(item_type, length, keep)
    elif item_type == _STRING:
        reader.skip_strings(length, MAX_STRING_BYTES)
    else:
        for _ in range(length):
            _read_array(reader, depth + 1)
    return GGUFArray(_TYPE_NAMES[item_type], length, values if keep else None)


def _read_value(reader: _Reader, value_type: int) -> GGUFValue:
    if value_type in _FIXED:
        return reader.unpack(*_FIXED[value_type])
    if value_type == _STRING:
        return reader.string(MAX_STRING_BYTES)
    return _read_array(reader, 1)


def _read_counts(reader: _Reader) -> tuple[int, int, int]:
    reader.field = "magic"
    magic = reader.take(4)
    if magic != GGUF_MAGIC:
        raise reader.error(f"magic is {magic!r}, not {GGUF_MAGIC!r}: not a GGUF file", 0)
    reader.field = "version"
    raw_version = reader.take(4)
    version = struct.unpack("<I", raw_version)[0]
    if version not in SUPPORTED_VERSIONS:
        if struct.unpack(">I", raw_version)[0] in SUPPORTED_VERSIONS:
            raise reader.error("big-endian GGUF is not supported", 4)
        raise reader.error(f"version {version} is not supported (allowed: 2, 3)", 4)
    reader.field = "tensor_count"
    tensor_count = reader.u64()
    if tensor_count > MAX_TENSOR_COUNT:
        raise reader.error(f"tensor_count {tensor_count} exceeds {MAX_TENSOR_COUNT}", 8)
    reader.field = "metadata_kv_count"
    kv_count = reader.u64()
    if kv_count > MAX_KV_COUNT:
        raise reader.error(f"metadata_kv_count {kv_count} exceeds {MAX_KV_COUNT}", 16)
    return version, tensor_count, kv_count


def _parse(reader: _Reader, name: str) -> GGUFHeader:
    version, tensor_count, kv_count = _read_counts(reader)
    metadata: dict[str, GGUFValue] = {}
    for index in range(kv_count):
        reader.field = f"metadata key #{index}"
        key = reader.string(MAX_KEY_BYTES)
        reader.field = f"metadata value {key!r}"
        if key in metadata:
            raise reader.error("duplicate key")
        metadata[key] = _read_value(reader, _value_type(reader))
    return GGUFHeader(name, version, tensor_count, metadata, reader.offset)


def read_gguf_header(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> GGUFHeader:
    """Parse the header and metadata of a GGUF file (a path or a binary stream at offset 0).

    Reads at most the metadata plus one 64 KiB chunk, never the tensor data. Raises
    `GGUFError` (a ValueError) for anything malformed or beyond the bounds, OSError when
    the file cannot be opened.
    """
    if isinstance(max_header_bytes, bool) or not isinstance(max_header_bytes, int):
        raise TypeError(f"max_header_bytes must be an int, got {max_header_bytes!r}")
    if max_header_bytes < 24:
        raise ValueError(
            f"max_header_bytes must be >= 24 (the fixed header), got {max_header_bytes}"
        )
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        with path.open("rb", buffering=0) as stream:
            size = os.fstat(stream.fileno()).st_size
            return _parse(_Reader(stream, str(path), size, max_header_bytes), str(path))
    name = str(getattr(source, "name", "<stream>"))
    return _parse(_Reader(source, name, None, max_header_bytes), name)
