"""``csalic train``: one resumable training job (one variant, one λ)."""

from __future__ import annotations

import argparse

from ..names import VARIANT_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one codec (one variant at one λ); re-running resumes",
        description="Train one CSA-LIC codec with L = R + λ(D_i + D_f). Re-running the same command resumes "
                    "from OUT/last.pt; a job already finished with the same settings is skipped.",
    )
    p.add_argument("--variant", required=True, metavar="NAME",
                   help=f"a CSA-LIC variant ({', '.join(VARIANT_NAMES)}) or one of the study's learned codecs")
    p.add_argument("--lmbda", required=True, type=float, help="Lagrange multiplier λ (> 0)")
    p.add_argument("--out", help="job directory (default results/<study>/train/<variant>/lambda_<λ>)")
    p.add_argument("--params", default="params.yaml", help="study description (default: %(default)s)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in total (overrides train.max_steps)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-track", action="store_true", help="do not log the finished job to MLflow")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..study import params as P
    from ..study.jobs import spec_from_params

    params = P.load(args.params)  # a bad study or λ is refused before torch is imported (seconds)
    spec = spec_from_params(params, args.variant, args.lmbda, args.out, args.max_steps, args.device)
    from ..study.train import train_job

    if not args.no_track:
        from ..study.tracking import check_store

        check_store(params["tracking"]["uri"])
    summary = train_job(spec, progress=not args.quiet)
    final = summary["final"]
    print(f"{spec.out_dir}: {summary['steps']} steps, bpp {final['bpp']:.4f}, PSNR {final['psnr']:.2f} dB, "
          f"loss {final['loss']:.4f}")
    if not args.no_track:
        from ..study.tracking import log_training_job

        log_training_job(spec.out_dir, params)
    return 0
