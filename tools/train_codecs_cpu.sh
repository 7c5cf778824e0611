#!/usr/bin/env bash
# Trains the three shipped operating points with the cpu preset, one after the other.
# Safe to kill and re-run: every stage resumes from its checkpoint or is skipped when done.
#   bash tools/train_codecs_cpu.sh [WORKROOT] [DATA_DIR] [KODAK_DIR]
# Then `python -m tools.ship_codecs --runs=WORKROOT` copies the results into tfcdi/pretrained.
#
# Each point trains from scratch by its recipe (tfcdi/train/codec.py, RECIPES: steps, schedule,
# precision), measuring itself on Kodak from real files at each milestone (history.json beside
# the bundle; ship_codecs ships it as tfcdi/pretrained/history_<op>.json).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$here/runs/codec_cpu}
data=${2:-$here/../shared/data/imagenette2_224}
kodak=${3:-$here/../shared/data/kodak}
for op in 0.0983 0.330 0.635; do
  python -m experiments.train_codec --recipe="ae-$op-cpu" --data_dir="$data" \
    --kodak_dir="$kodak" --workdir="$root/$op"
done
