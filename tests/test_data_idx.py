"""The IDX parser (nets.idx): round trips, a header written by hand, and clear errors
naming the file for bad magic numbers, truncation and corrupt gzip streams."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nets.idx import IdxError, read_idx, write_idx


def _hand_written_idx(images: list[list[list[int]]]) -> bytes:
    """IDX bytes built with struct only (an oracle independent of write_idx)."""
    n, h, w = len(images), len(images[0]), len(images[0][0])
    body = bytes(v for img in images for row in img for v in row)
    return struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", n, h, w) + body


def test_hand_written_uint8_images_are_read_with_their_shape_and_values(tmp_path: Path):
    images = [[[0, 1, 2], [3, 4, 5]], [[250, 251, 252], [253, 254, 255]]]
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(_hand_written_idx(images))
    arr = read_idx(path)
    assert arr.dtype == np.uint8
    assert arr.shape == (2, 2, 3)
    np.testing.assert_array_equal(arr, np.array(images, dtype=np.uint8))


@pytest.mark.parametrize("code, fmt, values", [(0x09, "b", [-128, 5]), (0x0B, "h", [258, -2]),
                                               (0x0C, "i", [70000, -3]), (0x0D, "f", [1.5, -0.25]),
                                               (0x0E, "d", [1e300, -2.5])])
def test_hand_written_multibyte_values_are_read_big_endian_as_idx_says(tmp_path: Path, code, fmt, values):
    """The IDX format stores every multi-byte value most significant byte first: bytes packed here by
    struct (">"), not by write_idx, read back as the values packed."""
    path = tmp_path / "v-idx1"
    path.write_bytes(struct.pack(">BBBB", 0, 0, code, 1) + struct.pack(">I", len(values))
                     + struct.pack(f">{len(values)}{fmt}", *values))
    np.testing.assert_array_equal(read_idx(path), np.array(values))


def test_gzip_is_detected_from_content_not_name(tmp_path: Path):
    images = [[[7, 8], [9, 10]]]
    path = tmp_path / "no-gz-suffix"
    path.write_bytes(gzip.compress(_hand_written_idx(images)))
    np.testing.assert_array_equal(read_idx(path), np.array(images, dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.dtype(">i2"), np.int32, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_write_then_read_is_the_identity_for_every_idx_dtype(tmp_path_factory, arr: np.ndarray, compress: bool):
    path = tmp_path_factory.mktemp("idx") / "a"
    write_idx(path, arr, compress=compress)
    back = read_idx(path)
    assert back.shape == arr.shape
    assert back.dtype == arr.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, arr)


def test_labels_file_is_one_dimensional(tmp_path: Path):
    path = write_idx(tmp_path / "labels-idx1-ubyte.gz", np.array([3, 1, 4], dtype=np.uint8))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), [3, 1, 4])


def test_bad_magic_number_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "bogus-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(IdxError, match=r"bogus-idx3-ubyte: not an IDX file: bad magic number 0x12340803"):
        read_idx(path)


def test_unknown_type_code_is_a_bad_magic_number(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(IdxError, match="bad magic number 0x00000701"):
        read_idx(path)


def test_truncated_raw_file_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "train-images-idx3-ubyte"
    full = _hand_written_idx([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    path.write_bytes(full[:-3])
    with pytest.raises(IdxError, match=r"train-images-idx3-ubyte: truncated IDX file: .* needs 8 data bytes, found 5"):
        read_idx(path)


def test_truncated_header_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(5))
    with pytest.raises(IdxError, match="short: truncated IDX file: header"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(IdxError, match="short: truncated IDX file"):
        read_idx(path)


def test_truncated_gzip_stream_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = gzip.compress(_hand_written_idx([[[i % 256 for i in range(40)]] * 40] * 3))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxError, match=r"t10k-images-idx3-ubyte.gz: truncated gzip file"):
        read_idx(path)


def test_trailing_bytes_are_an_error(tmp_path: Path):
    path = tmp_path / "long"
    path.write_bytes(_hand_written_idx([[[1]]]) + b"\x00\x00")
    with pytest.raises(IdxError, match="long: malformed IDX file: 2 bytes after"):
        read_idx(path)
