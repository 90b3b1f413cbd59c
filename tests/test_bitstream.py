"""The .csa container: exact round trips, and a decoder that cannot be crashed."""

from __future__ import annotations

import os
import random
import struct
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csalic.codec import bitstream
from csalic.codec.bitstream import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    MAGIC,
    VERSION,
    Payload,
    decode,
    encode,
    read_file,
    write_file,
)
from csalic.errors import BitstreamError, CsalicError

FP = bytes.fromhex("0123456789abcdef")
OTHER_FP = bytes.fromhex("fedcba9876543210")
STRINGS = [b"\x01\x02\x03", b"", b"hyper-z"]


def small_file() -> bytes:
    return encode(FP, 5, 7, STRINGS)


def reseal(body: bytes) -> bytes:
    """Recompute the CRC, as a forger would."""
    return body + struct.pack(">I", zlib.crc32(body))


def forged(height: int, width: int, n_strings: int = 1, fp: bytes = FP) -> bytes:
    body = struct.pack(">4sB8sIIH", MAGIC, VERSION, fp, height, width, n_strings)
    body += b"".join(struct.pack(">I", 1) + b"x" for _ in range(n_strings))
    return reseal(body)


# --- round trips -------------------------------------------------------------


def test_layout_is_the_documented_one():
    data = small_file()
    assert data[:4] == b"CSA\x1a"
    assert data[4] == 1
    assert data[5:13] == FP
    assert struct.unpack(">IIH", data[13:23]) == (5, 7, 3)
    assert struct.unpack(">I", data[23:27]) == (3,)
    assert data[27:30] == b"\x01\x02\x03"
    assert struct.unpack(">I", data[-4:]) == (zlib.crc32(data[:-4]),)
    assert len(data) == 4 + 1 + 8 + 4 + 4 + 2 + (4 + 3) + (4 + 0) + (4 + 7) + 4


def test_random_round_trips():
    rng = random.Random(1234)
    for trial in range(200):
        n = rng.choice([1, 2, 3, 9, 17, 1024]) if trial % 10 else rng.randint(1, 6)
        strings = [rng.randbytes(rng.choice([0, 0, 1, 5, 300])) for _ in range(n)]
        fp = rng.randbytes(8)
        h, w = rng.randint(1, 4096), rng.randint(1, 4096)
        out = decode(encode(fp, h, w, strings), expected_fingerprint=fp, expected_strings=n)
        assert out == Payload(fingerprint=fp, height=h, width=w, strings=strings)
        assert all(type(s) is bytes for s in out.strings)


def test_max_side_and_large_string_round_trip():
    big = os.urandom(1 << 20)
    data = encode(FP, DEFAULT_MAX_SIDE, 1, [big, b""])
    out = decode(data)
    assert (out.height, out.width, out.strings) == (DEFAULT_MAX_SIDE, 1, [big, b""])


def test_decode_accepts_bytearray_and_memoryview():
    data = small_file()
    expected = decode(data)
    assert decode(bytearray(data)) == expected
    assert decode(memoryview(data)) == expected


def test_file_round_trip(tmp_path):
    payload = Payload(FP, 480, 640, [os.urandom(100), b"", os.urandom(7)])
    path = tmp_path / "sub" / "img.csa"
    n = write_file(path, payload)
    assert n == path.stat().st_size == len(encode(FP, 480, 640, payload.strings))
    assert read_file(path) == payload
    assert read_file(str(path), expected_fingerprint=FP, expected_strings=3) == payload
    assert [p.name for p in path.parent.iterdir()] == ["img.csa"]  # no temp left over


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "img.csa"
    old = Payload(FP, 2, 2, [b"old"])
    write_file(path, old)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(CsalicError, match="No space left"):
        write_file(path, Payload(FP, 3, 3, [b"new" * 100]))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_file(path) == old
    assert [p.name for p in tmp_path.iterdir()] == ["img.csa"]


# --- encode: programmer errors ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (b"short", 1, 1, [b""]),
        (FP + b"x", 1, 1, [b""]),
        ("01234567", 1, 1, [b""]),
        (FP, 0, 1, [b""]),
        (FP, 1, 0, [b""]),
        (FP, DEFAULT_MAX_SIDE + 1, 1, [b""]),
        (FP, 1.0, 1, [b""]),
        (FP, True, 1, [b""]),
        (FP, 1, 1, []),
        (FP, 1, 1, [b""] * 1025),
        (FP, 1, 1, b"abc"),
        (FP, 1, 1, ["text"]),
    ],
)
def test_encode_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        encode(*args)


# --- decode: every kind of damage ---------------------------------------------


def test_every_truncation_is_reported_as_truncated():
    data = small_file()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError) as info:
            decode(data[:cut])
        msg = str(info.value)
        assert "truncated" in msg or "too short" in msg or (cut == 0 and "empty" in msg), (cut, msg)
        assert "\n" not in msg


def test_truncation_reports_missing_bytes():
    data = small_file()  # ends with: len 7, b"hyper-z", crc
    for k in range(1, 5):
        with pytest.raises(BitstreamError, match=rf"^truncated .*: {k} bytes of the checksum missing$"):
            decode(data[:-k])
    for k in range(5, 12):  # cut inside the last string: exact count is known
        with pytest.raises(BitstreamError, match=rf"string 3/3 .*at least {k} bytes missing"):
            decode(data[:-k])


def test_every_single_bit_flip_is_detected():
    data = small_file()
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(BitstreamError) as info:
                decode(bytes(bad))
            msg = str(info.value)
            assert any(
                k in msg for k in ("checksum", "magic", "version", "truncated", "trailing")
            ), (i, bit, msg)


def test_appended_bytes():
    with pytest.raises(BitstreamError, match=r"^1 trailing bytes after the \.csa checksum"):
        decode(small_file() + b"\x00")
    with pytest.raises(BitstreamError, match="trailing"):
        decode(small_file() * 2)


def test_bad_magic():
    data = small_file()
    for bad in (b"PNG\x1a" + data[4:], b"\x89PNG\r\n\x1a\n" + bytes(40), b"hello world" * 5, b"X"):
        with pytest.raises(BitstreamError, match="not a .csa file"):
            decode(bad)


def test_future_version():
    data = bytearray(small_file())
    data[4] = 2
    with pytest.raises(BitstreamError, match=r"unsupported \.csa version 2 \(this csalic reads version 1\)"):
        decode(reseal(bytes(data[:-4])))
    data[4] = 0
    with pytest.raises(BitstreamError, match="version 0"):
        decode(bytes(data))


def test_checksum_mismatch_message():
    data = bytearray(small_file())
    data[13] ^= 0x01  # height
    with pytest.raises(BitstreamError, match="^checksum mismatch: the .csa file is corrupted$"):
        decode(bytes(data))


@pytest.mark.parametrize(
    "h,w,pattern",
    [
        (0xFFFFFFFF, 0xFFFFFFFF, r"4294967295x4294967295 exceeds the limit of 32768 pixels per side"),
        (DEFAULT_MAX_SIDE + 1, 1, "per side"),
        (1, DEFAULT_MAX_SIDE + 1, "per side"),
        (DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE, r"1073741824 pixels exceeds the limit of 67108864; pass --max-pixels"),
        (8193, 8192, "--max-pixels"),
    ],
)
def test_forged_huge_size_with_valid_crc_is_refused_quickly(h, w, pattern):
    data = forged(h, w)
    t0 = time.perf_counter()
    with pytest.raises(BitstreamError, match=pattern):
        decode(data)
    assert time.perf_counter() - t0 < 0.1


def test_limits_are_adjustable():
    assert decode(forged(8192, 8192)).height == 8192  # exactly DEFAULT_MAX_PIXELS
    assert 8192 * 8192 == DEFAULT_MAX_PIXELS
    with pytest.raises(BitstreamError, match="exceeds the limit of 100"):
        decode(forged(11, 10), max_pixels=100)
    assert decode(forged(10, 10), max_pixels=100).width == 10
    with pytest.raises(BitstreamError, match="limit of 8 pixels per side"):
        decode(forged(9, 1), max_side=8)
    assert decode(forged(40000, 1), max_side=40000).height == 40000


@pytest.mark.parametrize("h,w", [(0, 5), (5, 0), (0, 0)])
def test_zero_size(h, w):
    with pytest.raises(BitstreamError, match=rf"invalid image size {h}x{w}"):
        decode(forged(h, w))


def test_string_count_outside_format_range():
    with pytest.raises(BitstreamError, match="declares 0 strings"):
        decode(forged(4, 4, n_strings=0))
    with pytest.raises(BitstreamError, match="declares 1025 strings"):
        decode(forged(4, 4, n_strings=1025))


def test_expected_strings_mismatch():
    data = small_file()
    assert len(decode(data, expected_strings=3).strings) == 3
    with pytest.raises(BitstreamError, match="has 3 strings but this model expects 5"):
        decode(data, expected_strings=5)


def test_fingerprint_mismatch():
    data = small_file()
    assert decode(data, expected_fingerprint=FP).fingerprint == FP
    with pytest.raises(BitstreamError) as info:
        decode(data, expected_fingerprint=OTHER_FP)
    assert str(info.value).startswith(
        ".csa file was made by a different model (fingerprint 0123456789abcdef), "
        "this checkpoint is fedcba9876543210"
    )


def test_decode_rejects_bad_arguments():
    with pytest.raises(ValueError):
        decode(small_file(), expected_fingerprint=b"short")
    with pytest.raises(ValueError):
        decode(small_file(), max_pixels=0)


# --- read_file failures name the path -----------------------------------------


def test_read_file_missing(tmp_path):
    p = tmp_path / "nope.csa"
    with pytest.raises(BitstreamError, match=rf"^{p}: no such file$"):
        read_file(p)


def test_read_file_directory(tmp_path):
    with pytest.raises(BitstreamError, match=rf"^{tmp_path}: is a directory"):
        read_file(tmp_path)


def test_read_file_fifo_does_not_block(tmp_path):
    p = tmp_path / "pipe.csa"
    os.mkfifo(p)
    with pytest.raises(BitstreamError, match="not a regular file"):
        read_file(p)


def test_read_file_unreadable(tmp_path):
    """Checked in a child that cannot override file permissions, so it runs as root too (CI is root)."""
    from helpers import run_unprivileged

    p = tmp_path / "img.csa"
    p.write_bytes(small_file())
    p.chmod(0)
    code = ("import sys\nfrom csalic.codec.bitstream import read_file\nfrom csalic.errors import BitstreamError\n"
            "try:\n    read_file(sys.argv[1])\nexcept BitstreamError as exc:\n    print(exc)\n    sys.exit(3)\n")
    try:
        proc = run_unprivileged(code, p)
    finally:
        p.chmod(0o600)
    assert proc.returncode == 3, proc.stderr[-500:]
    assert proc.stdout.strip() == f"{p}: permission denied"


def test_read_file_too_large(tmp_path, monkeypatch):
    monkeypatch.setattr(bitstream, "MAX_FILE_BYTES", 16)
    p = tmp_path / "big.csa"
    p.write_bytes(small_file())
    with pytest.raises(BitstreamError, match=rf"^{p}: .*larger than any .csa file"):
        read_file(p)


def test_read_file_decode_errors_name_the_path(tmp_path):
    p = tmp_path / "img.csa"
    p.write_bytes(small_file()[:-1])
    with pytest.raises(BitstreamError, match=rf"^{p}: truncated"):
        read_file(p)
    p.write_bytes(small_file())
    with pytest.raises(BitstreamError, match=rf"^{p}: .*different model"):
        read_file(p, expected_fingerprint=OTHER_FP)


# --- property: decode never raises anything but BitstreamError ----------------

FUZZ = settings(
    max_examples=500,
    deadline=200,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # reproducible in CI
    database=None,  # leave nothing in the tree
)


def _decode_or_bitstream_error(data: bytes) -> None:
    try:
        out = decode(data)
    except BitstreamError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(out, Payload)
        assert 1 <= out.height * out.width <= DEFAULT_MAX_PIXELS
        assert sum(len(s) for s in out.strings) < len(data)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data):
    _decode_or_bitstream_error(data)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_valid_magic(tail):
    _decode_or_bitstream_error(MAGIC + bytes([VERSION]) + tail)
    _decode_or_bitstream_error(reseal(MAGIC + bytes([VERSION]) + tail))


_valid = st.builds(
    encode,
    st.binary(min_size=8, max_size=8),
    st.integers(1, 64),
    st.integers(1, 64),
    st.lists(st.binary(max_size=20), min_size=1, max_size=6),
)


@st.composite
def mutated(draw):
    data = bytearray(draw(_valid))
    # Half the time spare magic+version so mutations reach the deeper checks.
    lo = 5 if draw(st.booleans()) else 0
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        # sampled_from spreads positions evenly; integers() would favour the magic bytes
        hi = max(len(data), 1)
        pos = draw(st.sampled_from(range(min(lo, hi - 1), hi)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data), draw(st.booleans())


@FUZZ
@given(mutated())
def test_mutated_valid_files(case):
    data, reseal_crc = case
    _decode_or_bitstream_error(data)
    if reseal_crc and len(data) >= 4:  # a forger who fixes the checksum
        _decode_or_bitstream_error(reseal(data[:-4]))
