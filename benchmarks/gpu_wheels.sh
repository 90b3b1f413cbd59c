#!/usr/bin/env bash
# Download what benchmarks/gpu_check.sh needs on a CUDA machine that has Python, torch and torchvision
# but no package index: wheels for that machine's Python (default 3.12, x86_64 manylinux), and
# compressai's source (it has no wheel for 3.12; gpu_check.sh builds it there without an index).
#
#   benchmarks/gpu_wheels.sh [DEST] [--python 3.12] [--full]
#
# --full adds snakemake, mlflow and ray (the micro study); ray's wheel alone is about 80 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.whl py=3.12 full=0
while [ $# -gt 0 ]; do
    case "$1" in
        --python) py=$2; shift 2 ;;
        --full) full=1; shift ;;
        -*) echo "usage: benchmarks/gpu_wheels.sh [DEST] [--python 3.12] [--full]" >&2; exit 2 ;;
        *) dest=$1; shift ;;
    esac
done
mkdir -p "$dest"
pkgs=(pycocotools bjontegaard jsonschema jsonschema-specifications referencing rpds-py)
[ "$full" -eq 1 ] && pkgs+=(snakemake mlflow "ray[default]")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "${pkgs[@]}"
python3 -m pip download -q --no-deps --no-binary=:all: -d "$dest" "compressai>=1.2.6"
ls -la "$dest"
