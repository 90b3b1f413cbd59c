"""The ``csalic`` command: a thin argparse front over the library.

Each subcommand lives in ``csalic.commands.<name>`` and exposes
``register(subparsers)``; the parsed namespace carries a ``func`` that does the
work.  Every :class:`~csalic.errors.CsalicError` becomes one line on stderr and
exit status 2, so rules and users never see a traceback for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from . import __version__
from .errors import CsalicError



def _command_modules() -> list[str]:
    """Every module in ``csalic.commands`` is a subcommand group (sorted, so --help is stable)."""
    from . import commands

    return sorted(f"csalic.commands.{m.name}" for m in pkgutil.iter_modules(commands.__path__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csalic",
        description="CSA-LIC: chroma superpixel aggregation learned image compression for machines.",
    )
    parser.add_argument("--version", action="version", version=f"csalic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CsalicError as exc:
        print(f"csalic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("csalic: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, file too large, permission denied: the system's reason, on one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"csalic: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
