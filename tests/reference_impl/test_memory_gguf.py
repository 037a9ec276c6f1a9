"""GGUF header reader: model shapes from metadata, bounded reads, typed errors only."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.gguf_metadata import (
    MAX_KV_COUNT,
    GGUFArray,
    GGUFError,
    read_gguf_header,
)
from reference_impl.memory_management import (
    DEFAULT_MODEL_SHAPE,
    model_shape_from_gguf,
    resolve_model_shape,
)
from tests.reference_impl.memory_gguf_writer import (
    ARRAY,
    STRING,
    UINT32,
    gguf_bytes,
    gguf_string,
    llama_like_metadata,
    write_gguf,
)

MIB = 1024 * 1024


class CountingStream(io.RawIOBase):
    """A raw binary stream over bytes that counts every byte handed out."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.bytes_read = 0
        self.name = "counting-stream"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        self.bytes_read += len(chunk)
        return len(chunk)


def test_header_and_metadata_are_read(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", llama_like_metadata(vocab=300), tensor_count=7)
    header = read_gguf_header(path)
    assert header.version == 3
    assert header.tensor_count == 7
    assert header.metadata["general.architecture"] == "qwen2"
    assert header.metadata["qwen2.block_count"] == 24
    assert header.metadata["qwen2.rope.freq_base"] == pytest.approx(1e6)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert tokens == GGUFArray("string", 300, None)
    token_types = header.metadata["tokenizer.ggml.token_type"]
    assert isinstance(token_types, GGUFArray)
    assert token_types.values == (1,) * 300
    assert header.header_bytes == path.stat().st_size


def test_version_2_is_read(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "v2.gguf", {"general.architecture": "llama"}, version=2)
    assert read_gguf_header(path).version == 2


def test_the_tensor_data_is_never_read() -> None:
    header = gguf_bytes(llama_like_metadata(vocab=2000))
    stream = CountingStream(header + b"\0" * (8 * MIB))
    parsed = read_gguf_header(cast(BinaryIO, stream))
    assert parsed.header_bytes == len(header)
    # At most one 64 KiB read-ahead chunk past the metadata, never the 8 MiB of tensors.
    assert stream.bytes_read <= len(header) + 64 * 1024


def test_shape_from_gguf_metadata(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "anything.gguf", llama_like_metadata(vocab=151936 // 64))
    shape = model_shape_from_gguf(path)
    assert (shape.layers, shape.kv_heads, shape.head_dim) == (24, 2, 64)  # 896 / 14
    assert shape.max_context == 32768
    assert shape.n_head == 14
    assert shape.n_embd == 896
    assert shape.n_vocab == 151936 // 64
    assert shape.name == "Qwen2.5 0.5B Instruct"
    assert str(path) in shape.source


def test_key_length_wins_over_embedding_per_head(tmp_path: Path) -> None:
    # gemma-2-2b: 2304 / 8 = 288, but head_dim (attention.key_length) is 256.
    meta = llama_like_metadata(
        "gemma2", layers=26, heads=8, kv_heads=4, embedding=2304, context=8192, key_length=256
    )
    shape = model_shape_from_gguf(write_gguf(tmp_path / "g.gguf", meta))
    assert shape.head_dim == 256
    assert shape.kv_bytes_per_token() == 104 * 1024


def test_per_layer_kv_head_counts_take_the_largest(tmp_path: Path) -> None:
    meta = [
        *(e for e in llama_like_metadata("openelm") if e[0] != "openelm.attention.head_count_kv"),
        ("openelm.attention.head_count_kv", ARRAY, (UINT32, [2, 2, 4, 3] + [2] * 20)),
    ]
    shape = model_shape_from_gguf(write_gguf(tmp_path / "o.gguf", meta))
    assert shape.kv_heads == 4


def test_a_gguf_path_resolves_by_its_metadata_not_its_name(tmp_path: Path) -> None:
    meta = llama_like_metadata(
        "phi3", layers=32, heads=32, kv_heads=32, embedding=3072, context=4096, name="Phi 3"
    )
    path = write_gguf(tmp_path / "Llama-3.2-1B-Q4_K_M.gguf", meta)
    shape = resolve_model_shape(str(path))
    assert shape is not DEFAULT_MODEL_SHAPE
    assert shape.kv_bytes_per_token() == 384 * 1024
    assert resolve_model_shape(path).kv_bytes_per_token() == 384 * 1024


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("qwen2.block_count", "qwen2.block_count"),
        ("qwen2.attention.head_count", "qwen2.attention.head_count"),
        ("general.architecture", "general.architecture"),
    ],
)
def test_missing_shape_keys_are_named(tmp_path: Path, missing: str, field: str) -> None:
    meta = [e for e in llama_like_metadata() if e[0] != missing]
    path = write_gguf(tmp_path / "m.gguf", meta)
    with pytest.raises(GGUFError, match=rf"m\.gguf.*{field}"):
        model_shape_from_gguf(path)


def test_a_zero_layer_count_is_refused(tmp_path: Path) -> None:
    meta = [
        ("qwen2.block_count", UINT32, 0) if e[0] == "qwen2.block_count" else e
        for e in llama_like_metadata()
    ]
    with pytest.raises(GGUFError, match=r"qwen2\.block_count.*0"):
        model_shape_from_gguf(write_gguf(tmp_path / "m.gguf", meta))


def _fixed(version: int = 3, tensors: int = 0, kvs: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"GGML" + b"\0" * 20, r"magic is b'GGML'"),
        (_fixed(version=1), r"version 1 is not supported \(allowed: 2, 3\)"),
        (b"GGUF" + struct.pack(">I", 3) + b"\0" * 16, r"big-endian"),
        (_fixed(tensors=1 << 40), r"tensor_count 1099511627776 exceeds"),
        (_fixed(kvs=MAX_KV_COUNT + 1), r"metadata_kv_count 65537 exceeds 65536"),
        (_fixed() + struct.pack("<Q", 1 << 62), r"metadata key #0 at byte 24: string length"),
        (_fixed() + gguf_string("k") + struct.pack("<I", 13), r"unknown value type 13"),
        (
            _fixed() + gguf_string("k") + struct.pack("<IIQ", ARRAY, UINT32, 1 << 50),
            r"metadata value 'k'.*array of 1125899906842624 uint32 items cannot fit",
        ),
        (_fixed() + gguf_string("k") + struct.pack("<I", STRING), r"file ends early"),
        (_fixed(kvs=2) + (gguf_string("k") + struct.pack("<IB", 0, 1)) * 2, r"duplicate key"),
        (_fixed()[:10], r"tensor_count at byte 8: file ends early"),
    ],
)
def test_malformed_headers_raise_a_typed_error_naming_file_and_field(
    tmp_path: Path, data: bytes, match: str
) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError, match=match) as info:
        read_gguf_header(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_metadata_beyond_the_cap_is_refused(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "big.gguf", {"general.description": "x" * 100_000})
    with pytest.raises(GGUFError, match=r"exceed max_header_bytes=4096"):
        read_gguf_header(path, max_header_bytes=4096)


def test_a_bad_cap_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"max_header_bytes must be >= 24"):
        read_gguf_header(tmp_path / "x.gguf", max_header_bytes=3)


_VALID = gguf_bytes(llama_like_metadata(vocab=40)) + b"\xab" * 64


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_the_typed_error(data: bytes) -> None:
    for candidate in (data, b"GGUF" + data, _fixed(kvs=3) + data):
        stream = CountingStream(candidate)
        try:
            header = read_gguf_header(cast(BinaryIO, stream))
        except GGUFError:
            continue
        assert header.header_bytes <= len(candidate)


@given(st.integers(min_value=0, max_value=len(_VALID) - 65))
def test_every_truncation_raises_the_typed_error(cut: int) -> None:
    with pytest.raises(GGUFError):
        read_gguf_header(cast(BinaryIO, CountingStream(_VALID[:cut])))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=4))
def test_corrupted_bytes_parse_or_raise_the_typed_error(flips: list[tuple[int, int]]) -> None:
    data = bytearray(_VALID)
    for index, value in flips:
        data[index] = value
    tensors = b"\xab" * (256 * 1024)  # stands in for tensor data after the header
    stream = CountingStream(bytes(data) + tensors)
    try:
        header = read_gguf_header(cast(BinaryIO, stream))
    except GGUFError:
        return
    # Whatever the bytes claim the metadata is, reading stops one chunk past its end.
    assert stream.bytes_read <= header.header_bytes + 64 * 1024


def test_long_string_arrays_cross_read_chunks_intact(tmp_path: Path) -> None:
    # 30k strings of varied length and one of 100 KB: many 64 KiB chunk boundaries are crossed
    # inside the fast skip; the keys after the array must still be read exactly.
    words = [("w" * (i % 23)) for i in range(30_000)]
    words[12_345] = "x" * 100_000
    meta = [
        ("tokenizer.ggml.tokens", ARRAY, (STRING, words)),
        ("after.count", UINT32, 7),
        ("after.text", STRING, "still here"),
    ]
    header = read_gguf_header(write_gguf(tmp_path / "long.gguf", meta, tensor_bytes=1024))
    assert header.metadata["tokenizer.ggml.tokens"] == GGUFArray("string", 30_000, None)
    assert header.metadata["after.count"] == 7
    assert header.metadata["after.text"] == "still here"
    assert header.header_bytes == (tmp_path / "long.gguf").stat().st_size - 1024


def test_a_malformed_gguf_file_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    path = tmp_path / "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"
    path.write_bytes(b"GGUF" + b"\xff" * 20)
    with pytest.raises(GGUFError, match=r"Qwen2\.5-0\.5B-Instruct-Q4_K_M\.gguf: GGUF version"):
        resolve_model_shape(str(path))


def test_a_rewritten_gguf_file_is_read_again(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", llama_like_metadata(layers=24))
    assert resolve_model_shape(str(path)).layers == 24
    write_gguf(path, llama_like_metadata(layers=12, name="a longer name changes the size"))
    assert resolve_model_shape(str(path)).layers == 12
