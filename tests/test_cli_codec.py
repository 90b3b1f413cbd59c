"""The compress/decompress commands as a user runs them: a real PNG, real files, exit codes, one-line errors."""

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from csalic.codec import bitstream
from csalic.codec.checkpoint import load_codec, save_codec
from csalic.cli import main
from csalic.codec.coding import decode_bytes
from csalic.imageio import read_tensor
from csalic.codec.model import build_model


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    save_codec(d / "full.pt", build_model("demo", "full"), lmbda=0.0025)
    save_codec(d / "concat.pt", build_model("demo", "concat"), lmbda=0.0025)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:83, 0:141]
    img = np.stack([xx * 255 / 140, yy * 255 / 82, (xx + yy) % 64 * 4], -1) + rng.normal(0, 8, (83, 141, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / "in put.png")
    return d


def run_cli(*args):
    """In-process call of the CLI: returns (exit code, stdout+stderr lines)."""
    return main([str(a) for a in args])


def test_round_trip_on_a_real_png(workdir, capsys):
    src, csa, out = workdir / "in put.png", workdir / "a.csa", workdir / "out.png"
    assert run_cli("compress", src, "-c", workdir / "full.pt", "-o", csa) == 0
    assert "bpp" in capsys.readouterr().out
    assert run_cli("decompress", csa, "-c", workdir / "full.pt", "-o", out) == 0
    decoded = np.asarray(Image.open(out))
    assert decoded.shape == (83, 141, 3)
    # the PNG is the model's reconstruction, and the file decodes to it again in memory
    model, info = load_codec(workdir / "full.pt")
    assert info["lmbda"] == 0.0025 and info["variant"] == "full"
    x_hat = decode_bytes(model, csa.read_bytes())
    expected = (x_hat[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(decoded, expected)
    payload = bitstream.read_file(csa)
    assert (payload.height, payload.width) == (83, 141)
    assert payload.fingerprint == model.fingerprint()


def test_errors_are_one_line_with_nonzero_exit(workdir, capsys):
    src, csa = workdir / "in put.png", workdir / "b.csa"
    assert run_cli("compress", src, "-c", workdir / "full.pt", "-o", csa) == 0
    capsys.readouterr()
    data = csa.read_bytes()

    cases = {}
    (workdir / "trunc.csa").write_bytes(data[: len(data) // 2])
    cases["trunc.csa"] = "truncated"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    (workdir / "flip.csa").write_bytes(bytes(flipped))
    cases["flip.csa"] = "checksum"
    # forged header: a huge image with a recomputed, valid checksum
    forged = bytearray(data[:-4])
    struct.pack_into(">II", forged, 13, 60000, 60000)
    forged += struct.pack(">I", zlib.crc32(bytes(forged)))
    (workdir / "forged.csa").write_bytes(bytes(forged))
    cases["forged.csa"] = "limit"
    (workdir / "empty.csa").write_bytes(b"")
    cases["empty.csa"] = "too short|not a .csa"
    for name, pattern in cases.items():
        code = run_cli("decompress", workdir / name, "-c", workdir / "full.pt", "-o", workdir / "x.png")
        err = capsys.readouterr().err.strip()
        assert code == 2, name
        assert len(err.splitlines()) == 1 and err.startswith("csalic: error:"), err
        import re

        assert re.search(pattern, err), (name, err)
    assert not (workdir / "x.png").exists()

    # a file made by another model
    code = run_cli("decompress", csa, "-c", workdir / "concat.pt", "-o", workdir / "x.png")
    assert code == 2 and "different model" in capsys.readouterr().err


def test_existing_output_survives_a_failed_decode(workdir, capsys):
    out = workdir / "keep.png"
    out.write_bytes(b"previous result")
    (workdir / "junk.csa").write_bytes(os.urandom(300))
    assert run_cli("decompress", workdir / "junk.csa", "-c", workdir / "full.pt", "-o", out) == 2
    assert out.read_bytes() == b"previous result"


def test_bad_inputs_to_compress(workdir, capsys):
    (workdir / "notimage.png").write_bytes(b"this is not an image")
    assert run_cli("compress", workdir / "notimage.png", "-c", workdir / "full.pt", "-o", workdir / "n.csa") == 2
    assert "cannot read image" in capsys.readouterr().err
    assert run_cli("compress", workdir / "missing.png", "-c", workdir / "full.pt", "-o", workdir / "n.csa") == 2
    assert "not found" in capsys.readouterr().err
    assert run_cli("compress", workdir / "in put.png", "-c", workdir / "nope.pt", "-o", workdir / "n.csa") == 2
    assert "checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_image_modes_are_brought_to_rgb(tmp_path, mode):
    rgb = Image.fromarray((np.random.default_rng(1).random((20, 30, 3)) * 255).astype(np.uint8))
    img = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    x = read_tensor(path)
    assert x.shape == (1, 3, 20, 30) and 0 <= x.min() and x.max() <= 1
    if mode == "I;16":
        # scaled from the 16-bit range, not clipped to white
        assert x.mean() < 0.9


def test_console_script_runs_without_traceback(workdir):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "csalic", "decompress", str(workdir / "nothere.csa"), "-c", str(workdir / "full.pt"),
         "-o", str(workdir / "z.png")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("csalic: error:")


def test_two_hundred_corrupted_files_each_give_one_line_and_exit_2(workdir, capsys):
    """Bit flips, truncations, appended bytes and forged header sizes (with the checksum fixed by the
    forger) through `csalic decompress`: one error line each, no traceback, fast, nothing written."""
    import time
    import zlib as _zlib

    src, csa = workdir / "in put.png", workdir / "fuzz-src.csa"
    assert run_cli("compress", src, "-c", workdir / "full.pt", "-o", csa) == 0
    good = csa.read_bytes()
    capsys.readouterr()
    rng = np.random.default_rng(2024)

    def reseal(body: bytes) -> bytes:
        return body + struct.pack(">I", _zlib.crc32(body) & 0xFFFFFFFF)

    cases = []
    for i in range(200):
        kind = i % 4
        data = bytearray(good)
        if kind == 0:
            pos = int(rng.integers(0, len(data)))
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            del data[int(rng.integers(0, len(data))):]
        elif kind == 2:
            data += rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        else:  # forged height/width (bytes 13..20) with a valid checksum
            body = bytearray(good[:-4])
            body[13:21] = struct.pack(">II", *(int(v) for v in rng.choice([0, 1 << 16, 1 << 20, 0xFFFFFFFF], 2)))
            data = bytearray(reseal(bytes(body)))
        cases.append(bytes(data))
    out = workdir / "fuzz.png"
    for i, data in enumerate(cases):
        bad = workdir / "fuzz.csa"
        bad.write_bytes(data)
        t = time.perf_counter()
        code = run_cli("decompress", bad, "-c", workdir / "full.pt", "-o", out)
        err = capsys.readouterr().err.strip()
        assert code == 2, (i, err)
        assert len(err.splitlines()) == 1 and err.startswith("csalic: error:") and "Traceback" not in err, (i, err)
        assert time.perf_counter() - t < 3.0, i
        assert not out.exists(), i
