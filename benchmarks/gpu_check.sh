#!/usr/bin/env bash
# One prepared check of the CUDA path, for a machine with a GPU, Python, torch and torchvision.
# It finishes within 8 minutes and writes its figures to OUT_DIR:
#
#   benchmarks/gpu_check.sh [OUT_DIR]        (default: $OUT when set, else benchmarks/gpu_out)
#
# 1. the CUDA subset of the tests (pytest -m cuda, and the bf16/D_f tests);
# 2. paper-size training steps with D_f (bf16 autocast, channels_last, batch 8 at 256x256),
#    beside compressai's ELIC with the same loss and settings;
# 3. paper-size encode and decode at 768x512, synchronised, entropy coding included, beside ELIC;
# 4. a two-variant micro study through Snakemake with its training as Ray GPU tasks.
#
# What the machine lacks is installed from wheels in .whl/ (or $CSALIC_WHEELS), with no package
# index: benchmarks/gpu_wheels.sh downloads them on a machine that has one. A step whose packages
# are missing (the micro study needs snakemake, ray and mlflow) is reported as skipped, not failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-benchmarks/gpu_out}}"
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
PY="${PYTHON:-python3}"
wheels="${CSALIC_WHEELS:-.whl}"
site=/tmp/csalic-site
if compgen -G "$wheels/*.whl" >/dev/null; then
    echo "installing $(ls "$wheels"/*.whl | wc -l) wheel(s) from $wheels into $site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$wheels"/*.whl || { echo "gpu_check: wheel install failed"; exit 1; }
fi
if compgen -G "$wheels/*.tar.gz" >/dev/null; then  # compressai: no wheel for every Python, built here
    echo "building $(ls "$wheels"/*.tar.gz | xargs -n1 basename | tr '\n' ' ')from source into $site"
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$site" \
        "$wheels"/*.tar.gz || { echo "gpu_check: source build failed"; exit 1; }
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PATH="$site/bin:$PATH"
: > "$out/steps.tsv"
failed=0

step() {  # step NAME LIMIT_S COMMAND...: run one part under a time limit and record its exit status
    local name=$1 limit=$2 t0 rc
    shift 2
    echo "== $name (limit ${limit} s)"
    t0=$(date +%s)
    timeout "$limit" "$@"
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$out/steps.tsv"
    echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s"
    [ "$rc" -eq 0 ] || failed=1
}

has() { "$PY" -c "import $1" 2>/dev/null; }

step environment 30 "$PY" -c "
import torch, torchvision, compressai, csalic
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__,
      'compressai', compressai.__version__, 'csalic', csalic.__version__)
assert torch.cuda.is_available(), 'no CUDA device visible'
print('device', torch.cuda.get_device_name(0), round(torch.cuda.get_device_properties(0).total_memory / 2**30), 'GiB')
"
[ "$failed" -eq 0 ] || { echo "gpu_check: no usable CUDA stack, stopping"; exit 1; }

step cuda-tests 120 "$PY" -m pytest -q -p no:xdist -p no:cacheprovider -o addopts="" -m "cuda" tests/test_cuda.py \
    --junitxml="$out/cuda_tests.xml"
step bf16-tests 60 "$PY" -m pytest -q -p no:xdist -p no:cacheprovider -o addopts="" \
    tests/test_train.py -k "bf16 or loss_terms or feature_loss"

step train-step 120 bash -c "'$PY' benchmarks/bench_train_step.py --size paper --batch 8 --crop 256 --device cuda \
    --settings bf16+cl --task-net tv_mask_rcnn_r50_fpn --feature-weight 1 --runs 5 --warmup 2 | tee '$out/train_step.md'"

step coding 90 "$PY" benchmarks/bench_codec.py --device cuda --height 512 --width 768 --models paper,elic \
    --runs 5 --warmup 2 --out "$out/codec.md"

if has snakemake && has ray && has mlflow; then
    step micro-study 120 "$PY" benchmarks/gpu_micro_study.py "$out"
else
    echo "== micro-study: skipped (needs snakemake, ray and mlflow; carry their wheels to run it)"
    printf 'micro-study\tskipped\t0\n' >> "$out/steps.tsv"
fi

echo "== summary"
cat "$out/steps.tsv"
exit "$failed"
