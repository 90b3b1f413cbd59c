"""``csalic compress`` and ``csalic decompress``: one image to a ``.csa`` file and back."""

from __future__ import annotations

import argparse
import time

from ..codec import bitstream


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="code one image into a .csa file",
                       description="Code IMAGE with a trained CSA-LIC checkpoint into a .csa bitstream file.")
    p.add_argument("image", help="input image (PNG, JPEG, ...; converted to 8-bit RGB)")
    p.add_argument("-c", "--checkpoint", required=True, help="codec checkpoint (.pt) from csalic train")
    p.add_argument("-o", "--output", required=True, help="output .csa file (written atomically)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--max-pixels", type=int, default=bitstream.DEFAULT_MAX_PIXELS,
                   help="refuse larger images (default: %(default)s)")
    p.set_defaults(func=_compress)

    d = sub.add_parser("decompress", help="decode a .csa file to a PNG",
                       description="Decode FILE.csa with the checkpoint that made it into a PNG image.")
    d.add_argument("bitstream", help="input .csa file")
    d.add_argument("-c", "--checkpoint", required=True, help="the codec checkpoint the file was made with")
    d.add_argument("-o", "--output", required=True, help="output PNG (written atomically)")
    d.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    d.add_argument("--max-pixels", type=int, default=bitstream.DEFAULT_MAX_PIXELS,
                   help="refuse files that declare larger images (default: %(default)s)")
    d.set_defaults(func=_decompress)


def _compress(args: argparse.Namespace) -> int:
    from ..codec.checkpoint import load_codec
    from ..codec.coding import encode_tensor
    from ..imageio import read_tensor
    from ..io import atomic_write_bytes

    x = read_tensor(args.image, args.max_pixels)
    model, _ = load_codec(args.checkpoint, args.device)
    t0 = time.perf_counter()
    enc = encode_tensor(model, x)
    seconds = time.perf_counter() - t0
    atomic_write_bytes(args.output, enc.data)
    print(f"{args.output}: {len(enc.data)} bytes, {enc.width}x{enc.height}, {enc.bpp:.4f} bpp, {seconds:.2f} s")
    return 0


def _decompress(args: argparse.Namespace) -> int:
    import torch

    from ..codec.checkpoint import load_codec
    from ..codec.coding import decode_payload
    from ..imageio import save_png

    bitstream.read_file(args.bitstream, max_pixels=args.max_pixels)  # a damaged file fails before any weights load
    model, _ = load_codec(args.checkpoint, args.device)
    payload = bitstream.read_file(
        args.bitstream,
        expected_fingerprint=model.fingerprint(),
        expected_strings=model.num_strings,
        max_pixels=args.max_pixels,
    )
    t0 = time.perf_counter()
    with torch.no_grad():
        x_hat = decode_payload(model, payload)
    seconds = time.perf_counter() - t0
    save_png(args.output, x_hat)
    print(f"{args.output}: {payload.width}x{payload.height}, decoded in {seconds:.2f} s")
    return 0
