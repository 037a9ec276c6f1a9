"""A tiny GGUF writer for tests: header and metadata only, per the GGUF spec.

Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (little-endian; header =
magic "GGUF", uint32 version, uint64 tensor_count, uint64 metadata_kv_count, then
metadata_kv_count entries of gguf_string key, uint32 value type, value). Strings are a uint64
length and UTF-8 bytes without NUL; arrays are a uint32 item type, a uint64 count and the items.
Tensor infos and data follow the metadata; tests append opaque bytes to stand in for them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

# gguf_metadata_value_type from the spec.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = (
    range(13)
)

_SCALAR_FORMATS = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}

Value = int | float | bool | str | tuple[int, Sequence[object]]


def gguf_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(value_type: int, value: object) -> bytes:
    if value_type == STRING:
        assert isinstance(value, str)
        return gguf_string(value)
    if value_type == ARRAY:
        assert isinstance(value, tuple)
        item_type, items = value
        body = b"".join(_value(item_type, item) for item in items)
        return struct.pack("<IQ", item_type, len(items)) + body
    return struct.pack(_SCALAR_FORMATS[value_type], value)


def _guess_type(value: object) -> int:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return UINT32
    if isinstance(value, float):
        return FLOAT32
    if isinstance(value, str):
        return STRING
    return ARRAY


def gguf_bytes(
    metadata: dict[str, object] | Sequence[tuple[str, int, object]],
    *,
    version: int = 3,
    tensor_count: int = 0,
    magic: bytes = b"GGUF",
) -> bytes:
    """Header + metadata. `metadata` maps key -> value (types guessed) or lists typed triples."""
    entries = (
        [(key, _guess_type(value), value) for key, value in metadata.items()]
        if isinstance(metadata, dict)
        else list(metadata)
    )
    out = [magic, struct.pack("<IQQ", version, tensor_count, len(entries))]
    for key, value_type, value in entries:
        out.append(gguf_string(key) + struct.pack("<I", value_type) + _value(value_type, value))
    return b"".join(out)


def llama_like_metadata(
    arch: str = "qwen2",
    *,
    layers: int = 24,
    heads: int = 14,
    kv_heads: int = 2,
    embedding: int = 896,
    context: int = 32768,
    vocab: int = 100,
    name: str = "Qwen2.5 0.5B Instruct",
    key_length: int | None = None,
) -> list[tuple[str, int, object]]:
    """Metadata shaped like a llama.cpp conversion (keys as llama.cpp's gguf-py writes them)."""
    entries: list[tuple[str, int, object]] = [
        ("general.architecture", STRING, arch),
        ("general.name", STRING, name),
        (f"{arch}.block_count", UINT32, layers),
        (f"{arch}.context_length", UINT32, context),
        (f"{arch}.embedding_length", UINT32, embedding),
        (f"{arch}.attention.head_count", UINT32, heads),
        (f"{arch}.attention.head_count_kv", UINT32, kv_heads),
        (f"{arch}.rope.freq_base", FLOAT32, 1000000.0),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"tok{i}" for i in range(vocab)])),
        ("tokenizer.ggml.token_type", ARRAY, (INT32, [1] * vocab)),
    ]
    if key_length is not None:
        entries.append((f"{arch}.attention.key_length", UINT32, key_length))
    return entries


def write_gguf(
    path: Path,
    metadata: dict[str, object] | Sequence[tuple[str, int, object]],
    *,
    tensor_bytes: int = 0,
    version: int = 3,
    tensor_count: int = 0,
) -> Path:
    """Write a GGUF header to `path`, followed by `tensor_bytes` of stand-in tensor data."""
    header = gguf_bytes(metadata, version=version, tensor_count=tensor_count)
    path.write_bytes(header + b"\xab" * tensor_bytes)
    return path
