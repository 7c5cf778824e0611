#!/usr/bin/env bash
# Trains the three shipped operating points with the cpu preset, one after the other.
# Safe to kill and re-run: every stage resumes from its checkpoint or is skipped when done.
#   bash tools/train_codecs_cpu.sh [WORKROOT] [DATA_DIR] [KODAK_DIR]
# Then `python -m tools.ship_codecs --runs=WORKROOT` copies the results into tfcdi/pretrained.
#
# The shipped 0.635 codec ran 5,000 steps: 2,000 before the preset's rate calibration existed
# (target entropy x1.0), then 3,000 more with it (see BUILD_NOTES.md). From scratch, this script
# trains all 5,000 steps calibrated.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$here/runs/codec_cpu}
data=${2:-$here/../shared/data/imagenette2_224}
kodak=${3:-$here/../shared/data/kodak}
for op_steps in 0.330:2000 0.0983:2000 0.635:5000; do
  op=${op_steps%%:*}
  python -m experiments.train_codec --operating_point="$op" --preset=cpu \
    --num_steps="${op_steps##*:}" --data_dir="$data" --kodak_dir="$kodak" --workdir="$root/$op"
done
