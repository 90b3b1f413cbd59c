"""Anchors: real round trips (VVenC and x265 through the bundled FFmpeg, Pillow, pillow-heif), and the
command lines of vvencapp and VTM checked against fake tools (those two are not installable here)."""

import json
import math
import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csalic.evaluation.anchors import (Uncompressed, available_anchors, avif_available, get_anchor, load_published,
                            primary_anchor, published_curves)
from csalic.evaluation.anchors.vvc import parse_encoder_output
from csalic.evaluation.anchors.yuv420 import read_yuv, rgb_to_yuv420, write_yuv, yuv420_to_rgb
from csalic.errors import CsalicError
from csalic.evaluation.evaluate import psnr_rgb
from csalic.imageio import load_image

ODD = "a b;$(x).png"


def _image(w=97, h=61, shapes=True) -> Image.Image:
    """Smooth colour gradients (+ two flat shapes): something codecs can work on at odd sizes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([40 + 160 * xx / w, 60 + 120 * yy / h, 200 - 100 * (xx + yy) / (w + h)], axis=-1)
    if shapes:
        rgb[(xx - 30) ** 2 + (yy - 30) ** 2 < 15 ** 2] = (230, 40, 40)
        rgb[40:55, 60:85] = (40, 70, 230)
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


# ----------------------------------------------------------------------------- Pillow and pillow-heif

PILLOW = ["hevc", "jpeg", "webp", "avif"]


@pytest.mark.parametrize("name", PILLOW)
def test_round_trip_real_bytes_and_quality_order(name):
    if name == "avif" and not avif_available()[0]:
        pytest.skip(avif_available()[1])
    img = _image()
    out = {}
    for q in (20, 80):
        codec = get_anchor(name, q)
        data = codec.encode(img)
        dec = codec.decode(data)
        assert isinstance(data, bytes) and dec.size == img.size and dec.mode == "RGB"
        assert codec.setting == f"quality={q}" and codec.setting_tag == f"quality_{q}"
        out[q] = (len(data) * 8 / (img.width * img.height), psnr_rgb(img, dec))
    (bpp_lo, psnr_lo), (bpp_hi, psnr_hi) = out[20], out[80]
    assert 0 < bpp_lo < bpp_hi < 24
    assert 20 < psnr_lo < psnr_hi
    assert codec.describe()["quality"] == 80


def test_hevc_is_a_real_heif_file():
    data = get_anchor("hevc", 50).encode(_image())
    assert data[4:12] == b"ftypheic"  # ISO-BMFF brand of an HEVC HEIF image
    assert "pillow-heif" in get_anchor("hevc", 50).describe()["library"]


@pytest.mark.parametrize("q", [0, 101, 2.5, "x", True])
def test_bad_quality(q):
    with pytest.raises(CsalicError, match="quality must be an integer 1..100"):
        get_anchor("jpeg", q)


def test_uncompressed_is_lossless_ppm_at_24_bpp():
    img = _image()
    codec = Uncompressed()
    data = codec.encode(img)
    assert np.array_equal(np.asarray(codec.decode(data)), np.asarray(img))
    assert len(data) == img.width * img.height * 3 + len(f"P6\n{img.width} {img.height}\n255\n")


def test_unknown_anchor_and_damaged_data():
    with pytest.raises(CsalicError, match="unknown anchor 'x265'"):
        get_anchor("x265", 30)
    with pytest.raises(CsalicError, match="cannot decode JPEG data"):
        get_anchor("jpeg", 50).decode(b"not a jpeg")


# ----------------------------------------------------------------------------- raw YUV

def test_yuv420_full_range_10_bit_levels_and_round_trip():
    grey = np.full((4, 6, 3), 128, np.uint8)
    y, cb, cr = rgb_to_yuv420(grey)
    assert y.dtype == np.uint16 and y.shape == (4, 6) and cb.shape == (2, 3)
    assert (y == round(128 / 255 * 1023)).all() and (cb == 512).all() and (cr == 512).all()
    white, black = rgb_to_yuv420(np.full((2, 2, 3), 255, np.uint8)), rgb_to_yuv420(np.zeros((2, 2, 3), np.uint8))
    assert white[0].max() == 1023 and black[0].max() == 0
    assert np.array_equal(yuv420_to_rgb(y, cb, cr), grey)
    smooth = np.asarray(_image(shapes=False))[:60, :96]
    back = yuv420_to_rgb(*rgb_to_yuv420(smooth))
    assert psnr_rgb(Image.fromarray(smooth), Image.fromarray(back)) > 40


def test_yuv_file_layout(tmp_path):
    planes = rgb_to_yuv420(np.asarray(_image(96, 60)))
    write_yuv(tmp_path / "p.yuv", planes)
    assert (tmp_path / "p.yuv").stat().st_size == 96 * 60 * 3  # 1.5 samples per pixel, 2 bytes each
    got, depth = read_yuv(tmp_path / "p.yuv", 96, 60)
    assert depth == 10 and all(np.array_equal(a, b) for a, b in zip(got, planes))
    with pytest.raises(CsalicError, match="wrote 17280 bytes; a 96x30 4:2:0 picture has 8640"):
        read_yuv(tmp_path / "p.yuv", 96, 30)


# ----------------------------------------------------------------------------- VVC through fake tools

FAKE = textwrap.dedent('''\
    #!{python}
    """Fake vvencapp / vvdecapp / VTM: the bitstream is a tag + the YUV itself."""
    import json, os, sys
    name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    if os.environ.get("FAKE_VVC_LOG"):
        with open(os.environ["FAKE_VVC_LOG"], "a") as fh:
            fh.write(json.dumps([name] + args) + "\\n")
    def opt(flag):
        return args[args.index(flag) + 1]
    def long(key):
        return next(a.split("=", 1)[1] for a in args if a.startswith(key + "="))
    if "Enc" in name or "enc" in name:
        if os.environ.get("FAKE_VVC_FAIL"):
            print("vvenc [info]: starting", flush=True)
            sys.stderr.write("vvenc [error]: something first\\nerror: fake failure last line\\n")
            sys.exit(3)
        if "vvenc" in name:
            src, out, size = opt("-i"), opt("-o"), opt("-s")
        else:
            src, out, size = opt("-i"), opt("-b"), long("--SourceWidth") + "x" + long("--SourceHeight")
        w, h = map(int, size.split("x"))
        data = open(src, "rb").read()
        assert len(data) == w * h * 3, (len(data), w, h)
        with open(out, "wb") as fh:
            fh.write(b"FAKEVVC1" + data)
        print("vvencapp: Fraunhofer VVC Encoder ver. 1.99.0 [Linux][GCC][64 bit][SIMD=NONE]")
        print("vvenc [info]: SUMMARY --------------------------------------------------------")
        print("vvenc [info]:\\tTotal Frames |   Bitrate     Y-PSNR    U-PSNR    V-PSNR    YUV-PSNR")
        print("vvenc [info]:\\t       1    a      123.4560   41.5000   43.2500   44.0000   42.1000")
    else:
        data = open(opt("-b"), "rb").read()
        assert data[:8] == b"FAKEVVC1"
        with open(opt("-o"), "wb") as fh:
            fh.write(data[8:])
    ''')


def _install_fake(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        p = folder / n
        p.write_text(FAKE.format(python=sys.executable))
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    """vvencapp/vvdecapp on a PATH whose folder name has spaces and shell characters."""
    bin_dir = _install_fake(tmp_path / "fake bin;$(touch PWNED)", ["vvencapp", "vvdecapp"])
    monkeypatch.setenv("PATH", str(bin_dir))
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_VVC_LOG", str(log))
    return bin_dir, log


def _photo(w=161, h=123) -> Image.Image:
    """A crop of a real photograph (matplotlib's sample), odd-sized, so 4:2:0 padding is exercised."""
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return im.convert("RGB").resize((256, 256)).crop((40, 20, 40 + w, 20 + h))


@pytest.mark.parametrize("name,qps,version", [("vvc", (32, 47, 63), "VVenC 1.15"), ("hevc-qp", (30, 42, 51), "x265 ")])
def test_bundled_ffmpeg_codes_real_vvc_and_hevc_pictures(name, qps, version):
    """No configuration: VVenC and x265 through imageio-ffmpeg's FFmpeg, real Annex-B bitstreams both ways."""
    img = _photo()
    points = []
    for qp in qps:
        codec = get_anchor(name, qp)
        data = codec.encode(img)
        assert data[:4] == bytes([0, 161, 0, 123])  # size header, then the raw bitstream
        assert data[4:8] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x00") or data[4:7] == b"\x00\x00\x01"
        dec = codec.decode(data)
        assert dec.size == img.size and dec.mode == "RGB"
        points.append((len(data) * 8 / (161 * 123), psnr_rgb(img, dec)))
    (b0, p0), (b1, p1), (b2, p2) = points
    assert b0 > b1 > b2 > 0 and p0 > p1 > p2 > 15  # a higher QP spends fewer bits on a worse picture
    assert p0 > 30
    d = codec.describe()
    assert d["qp"] == qps[-1] and d["setting"] == f"qp={qps[-1]}"
    assert version in d["label"] and "via FFmpeg 9" in d["label"] and d["label"].endswith("4:2:0 10-bit)")
    if name == "vvc":
        assert d["flavour"] == "ffmpeg" and d["encoder"] == d["decoder"]


def test_bundled_vvc_is_deterministic_and_turns_perceptual_qp_adaptation_off():
    codec = get_anchor("vvc", 45)
    img = _photo(64, 48)
    assert codec.encode(img) == codec.encode(img)
    cmd = codec.encoder_command(Path("/w/in put.yuv"), Path("/w/o;ut.266"), 64, 48)
    assert cmd[cmd.index("-qpa") + 1] == "0" and cmd[cmd.index("-c:v") + 1] == "libvvenc"
    assert cmd[cmd.index("-pix_fmt") + 1] == "yuv420p10le" and cmd[-3:] == ["-f", "vvc", "/w/o;ut.266"]
    assert "/w/in put.yuv" in cmd and cmd[cmd.index("-threads") + 1] == "1"


def test_a_broken_ffmpeg_is_one_line(monkeypatch, tmp_path):
    from csalic.evaluation.anchors import ffmpeg

    ffmpeg.ffmpeg_info.cache_clear()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no ffmpeg"))
    for name in ("vvc", "hevc-qp"):
        with pytest.raises(CsalicError) as err:
            get_anchor(name, 32)
        assert "\n" not in str(err.value) and "unset it to use the bundled FFmpeg" in str(err.value)
    assert available_anchors()["vvc"][0] is False
    assert primary_anchor()[0] == "hevc" and "stands in for VVC-Intra" in primary_anchor()[1]
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/bin/true")  # runs, but is no FFmpeg with libvvenc
    with pytest.raises(CsalicError, match="has no encoder libvvenc and no decoder vvc"):
        get_anchor("vvc", 32)
    ffmpeg.ffmpeg_info.cache_clear()


def test_hevc_qp_range():
    for qp in (-1, 52, 3.5):
        with pytest.raises(CsalicError, match="HEVC QP must be an integer 0..51"):
            get_anchor("hevc-qp", qp)


def test_vvenc_command_is_a_list_with_paths_intact(fake_path):
    bin_dir, _ = fake_path
    codec = get_anchor("vvc", 37, vvc_encoder="vvencapp")
    assert codec.tools.flavour == "vvenc" and codec.tools.decoder == bin_dir / "vvdecapp"
    yuv, bit = Path("/w/a b;$(x).yuv"), Path("/w/o ut.266")
    assert codec.encoder_command(yuv, bit, 98, 62) == [
        str(bin_dir / "vvencapp"), "-i", "/w/a b;$(x).yuv", "-s", "98x62", "-c", "yuv420_10", "-r", "1", "-f", "1",
        "--preset", "medium", "-q", "37", "--qpa", "0", "--internal-bitdepth", "10", "-o", "/w/o ut.266"]
    assert codec.decoder_command(bit, yuv) == [str(bin_dir / "vvdecapp"), "-b", "/w/o ut.266", "-o",
                                               "/w/a b;$(x).yuv"]
    assert codec.setting == "qp=37" and codec.describe()["flavour"] == "vvenc"


def test_vvc_round_trip_odd_size_and_shell_characters(fake_path, tmp_path):
    bin_dir, log = fake_path
    src = tmp_path / ODD
    _image(97, 61, shapes=False).save(src)
    img = load_image(src)
    work = tmp_path / "work dir;$(touch PWNED2)"
    codec = get_anchor("vvc", 32, vvc_encoder="vvencapp", workdir=work)
    data = codec.encode(img)
    assert len(data) == 4 + 8 + 98 * 62 * 3  # size header + fake tag + padded 10-bit 4:2:0 picture
    assert data[:4] == bytes([0, 97, 0, 61])
    dec = codec.decode(data)
    assert dec.size == (97, 61)
    assert psnr_rgb(img, dec) > 38  # only the colour conversion and 4:2:0 chroma are lossy here
    assert codec.last_encoder_log == {"version": "1.99.0", "frames": 1, "bitrate_kbps": 123.456, "psnr_y": 41.5,
                                      "psnr_u": 43.25, "psnr_v": 44.0, "psnr_yuv": 42.1}
    calls = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["vvencapp", "vvdecapp"]
    enc_in = calls[0][calls[0].index("-i") + 1]
    assert Path(enc_in).parent.parent == work and enc_in.endswith("input.yuv")
    assert not any(p.name.startswith("PWNED") for p in tmp_path.rglob("*"))
    assert not list(work.iterdir())  # temporary files cleaned up


def test_vvc_encoder_failure_is_one_line_with_the_tools_last_stderr_line(fake_path, monkeypatch):
    monkeypatch.setenv("FAKE_VVC_FAIL", "1")
    with pytest.raises(CsalicError) as err:
        get_anchor("vvc", 32, vvc_encoder="vvencapp").encode(_image())
    assert str(err.value) == "VVC encoder vvencapp failed (exit 3): error: fake failure last line"


def test_vtm_flavour_by_configured_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bin_dir = _install_fake(tmp_path / "VTM bin", ["EncoderAppStatic", "DecoderAppStatic"])
    codec = get_anchor("vvc", 42, vvc_encoder=bin_dir / "EncoderAppStatic")
    assert codec.tools.flavour == "vtm" and codec.tools.decoder.name == "DecoderAppStatic"
    cmd = codec.encoder_command(Path("in.yuv"), Path("b.bin"), 64, 32)
    assert cmd[1:5] == ["-i", "in.yuv", "-b", "b.bin"]
    assert {"--SourceWidth=64", "--SourceHeight=32", "--QP=42", "--IntraPeriod=1", "--InputBitDepth=10",
            "--InputChromaFormat=420", "--FramesToBeEncoded=1", "--ConformanceWindowMode=1"} <= set(cmd)
    assert codec.decoder_command(Path("b.bin"), Path("r.yuv"))[-2:] == ["-d", "10"]
    img = _image(64, 33, shapes=False)
    assert codec.decode(codec.encode(img)).size == (64, 33)


def test_vvc_bad_settings(fake_path, tmp_path):
    for qp in (-1, 64, 3.5, "32"):
        with pytest.raises(CsalicError, match="QP must be an integer 0..63"):
            get_anchor("vvc", qp, vvc_encoder="vvencapp")
    with pytest.raises(CsalicError, match="VVC encoder .* not found"):
        get_anchor("vvc", 32, vvc_encoder=tmp_path / "nope" / "vvencapp")
    with pytest.raises(CsalicError, match="truncated"):
        get_anchor("vvc", 32, vvc_encoder="vvencapp").decode(b"\x00\x01")
    with pytest.raises(CsalicError, match="applies to VTM's EncoderApp only"):
        get_anchor("vvc", 32, config=__file__)
    with pytest.raises(CsalicError, match="cannot tell whether"):
        get_anchor("vvc", 32, vvc_encoder=sys.executable)


def test_parse_vtm_output():
    text = ("VVCSoftware: VTM Encoder Version 23.3 [Linux][GCC 12.2.0][64 bit] [SIMD=AVX2]\n"
            "SUMMARY --------------------------------------------------------\n"
            "\tTotal Frames |   Bitrate     Y-PSNR    U-PSNR    V-PSNR    YUV-PSNR \n"
            "\t        1    a  11232.0000   37.9171   41.3460   42.4325   38.9519\n")
    assert parse_encoder_output(text) == {"version": "23.3", "frames": 1, "bitrate_kbps": 11232.0,
                                          "psnr_y": 37.9171, "psnr_u": 41.346, "psnr_v": 42.4325,
                                          "psnr_yuv": 38.9519}
    assert parse_encoder_output("vvenc [info]: stats summary: frame= 1/1 avg_fps= 2.0 avg_bitrate= 99.5 kbps") == \
        {"bitrate_kbps": 99.5}
    assert parse_encoder_output("") == {}


# ----------------------------------------------------------------------------- published points

def test_published_csv_and_json(tmp_path):
    csv_path = tmp_path / "pub.csv"
    csv_path.write_text("method,dataset,task,bpp,map50\nLALIC,coco2017_val,detection,0.4,0.6\n"
                        "LALIC,coco2017_val,detection,0.2,0.5\nUG-ICM,coco2017_val,segmentation,0.3,0.45\n")
    rows = load_published(csv_path)
    assert published_curves(rows)[("LALIC", "coco2017_val", "detection")] == ([0.2, 0.4], [0.5, 0.6])
    js = tmp_path / "pub.json"
    js.write_text(json.dumps({"source": "read off Fig. 5", "points": [
        {"method": "SMIC-Net", "dataset": "openimages_seg", "task": "segmentation", "bpp": 0.1, "map50": 0.3}]}))
    (row,) = load_published(js)
    assert row["source"] == "read off Fig. 5" and row["task"] == "segmentation"


@pytest.mark.parametrize("line, match", [
    ("LALIC,coco2017_val,detection,0.2,45.0", "map50 must be in \\[0, 1\\]"),
    ("LALIC,coco2017_val,classification,0.2,0.4", "task 'classification'"),
    ("LALIC,coco2017_val,detection,-1,0.4", "bpp must be a positive"),
    ("LALIC,,detection,0.2,0.4", "missing dataset"),
])
def test_published_bad_rows(tmp_path, line, match):
    p = tmp_path / "pub.csv"
    p.write_text("method,dataset,task,bpp,map50\n" + line + "\n")
    with pytest.raises(CsalicError, match=match):
        load_published(p)
    with pytest.raises(CsalicError, match="not found"):
        load_published(tmp_path / "none.csv")


def test_psnr_helper_sanity():
    img = _image()
    assert psnr_rgb(img, img) is None
    assert math.isfinite(psnr_rgb(img, get_anchor("jpeg", 50).decode(get_anchor("jpeg", 50).encode(img))))
