#!/usr/bin/env bash
# Trains the three shipped operating points with the cpu preset, one after the other.
# Safe to kill and re-run: every stage resumes from its checkpoint or is skipped when done.
#   bash tools/train_codecs_cpu.sh [WORKROOT] [DATA_DIR] [KODAK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$here/runs/codec_cpu}
data=${2:-$here/../shared/data/imagenette2_224}
kodak=${3:-$here/../shared/data/kodak}
for op in 0.635 0.330 0.0983; do
  python -m experiments.train_codec --operating_point="$op" --preset=cpu \
    --data_dir="$data" --kodak_dir="$kodak" --workdir="$root/$op"
done
