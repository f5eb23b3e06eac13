#!/usr/bin/env bash
# The reproduction study on a GPU machine without network that takes at most 64 MiB per transfer (the device tool):
# the exact CIFAR-10 travels in three parts, one per call, as ../shared/data/cifar10-exact/README.md describes; the
# lossy copy, the pblf dependencies that machine lacks (jsonschema and its needs) and the last part go with the third
# call, which rebuilds both copies and runs `benchmarks/reproduce.py --grid gpu` (at most ~9 minutes).
#
#   bash benchmarks/reproduce_gpu.sh prepare         # here, once: writes data/transfer/{part0,part1,part2}
#   # then three device calls, back to back while the machine is warm:
#   #   carry [data/transfer/part0]                                  bash benchmarks/reproduce_gpu.sh receive 0
#   #   carry [data/transfer/part1]                                  bash benchmarks/reproduce_gpu.sh receive 1
#   #   carry [data/transfer/part2]  timeout_s 600                   bash benchmarks/reproduce_gpu.sh run
#   # the third call's $OUT holds reproduce_gpu.json and the runs' logs: commit the JSON under benchmarks/results/.
#
# GRID=tiny and DEVICE_STORE=<folder> rehearse the same steps on a CPU (the data must be the real CIFAR-10: the exact
# parts are md5-checked when they are unpacked).
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-../shared/data}
TRANSFER=data/transfer
STORE=${DEVICE_STORE:-/tmp/pblf-transfer}   # where the carried parts wait on the device machine between calls
GRID=${GRID:-gpu}
PYTHON=${PYTHON:-python3}
# what the GPU machine's image lacks of pblf's dependencies (its torch, numpy, scipy, scikit-learn, pyyaml, tabulate,
# Pillow and matplotlib serve; snakemake is not needed to run `pblf split` and `pblf train`)
WHEELS="jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1"

case "${1:-}" in
prepare)
    rm -rf "$TRANSFER" && mkdir -p "$TRANSFER"/part0 "$TRANSFER"/part1 "$TRANSFER"/part2/lossy "$TRANSFER"/part2/whl
    $PYTHON "$SHARED"/cifar10-exact/parts.py pack data/cifar10-exact "$TRANSFER"/parts
    for k in 0 1 2; do mv "$TRANSFER"/parts/part-$k.bin "$TRANSFER"/part$k/; done
    mv "$TRANSFER"/parts/index.npz "$TRANSFER"/part0/ && rmdir "$TRANSFER"/parts
    cp "$SHARED"/cifar10-exact/parts.py "$SHARED"/cifar10-exact/rebuild_canonical.py "$TRANSFER"/part0/
    cp "$SHARED"/cifar10-lossy/images.bin.xz "$SHARED"/cifar10-lossy/index.npz \
       "$SHARED"/cifar10-lossy/build_batches.py "$TRANSFER"/part2/lossy/
    # shellcheck disable=SC2086
    $PYTHON -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$TRANSFER"/part2/whl $WHEELS
    du -sh "$TRANSFER"/part*
    ;;
receive)
    mkdir -p "$STORE" && cp -r "$TRANSFER"/part"$2"/. "$STORE"/
    ls -l "$STORE"
    ;;
run)
    mkdir -p "$STORE" && cp -r "$TRANSFER"/part2/. "$STORE"/
    export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/pblf-site:$PWD/workflow${PYTHONPATH:+:$PYTHONPATH}"
    if [ "$GRID" = gpu ]; then
        $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pblf-site \
            "$STORE"/whl/*.whl
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    fi
    $PYTHON "$STORE"/parts.py unpack "$STORE" data/cifar10-exact           # md5-checked: exit 1 on a mismatch
    $PYTHON "$STORE"/lossy/build_batches.py data/cifar10-lossy
    out=${OUT:-benchmarks/out}
    work=benchmarks/out/reproduce-"$GRID"
    $PYTHON benchmarks/reproduce.py --grid "$GRID" --out "$out"/reproduce_"$GRID".json --work "$work"
    tar -czf "$out"/reproduce_"$GRID"_logs.tar.gz -C "$work" logs
    ;;
*)
    echo "usage: $0 prepare | receive 0|1 | run" >&2
    exit 2
    ;;
esac
