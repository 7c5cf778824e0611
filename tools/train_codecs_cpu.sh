#!/usr/bin/env bash
# Trains the three shipped operating points with the cpu preset, one after the other.
# Safe to kill and re-run: every stage resumes from its checkpoint or is skipped when done.
#   bash tools/train_codecs_cpu.sh [WORKROOT] [DATA_DIR] [KODAK_DIR]
# Then `python -m tools.ship_codecs --runs=WORKROOT` copies the results into tfcdi/pretrained.
#
# The shipped codecs ran 2,000 (0.0983), 15,000 (0.330) and 20,000 (0.635) steps, in stages whose
# history BUILD_NOTES.md records (the first 0.635 stage before the rate calibration existed; the
# 0.330 run restarted from its 10,000-step bundle). From scratch, this script trains the same
# step counts in one go each (mixed bfloat16 where the CPU has it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$here/runs/codec_cpu}
data=${2:-$here/../shared/data/imagenette2_224}
kodak=${3:-$here/../shared/data/kodak}
for op_steps in 0.330:15000 0.0983:2000 0.635:20000; do
  op=${op_steps%%:*}
  python -m experiments.train_codec --operating_point="$op" --preset=cpu \
    --num_steps="${op_steps##*:}" --data_dir="$data" --kodak_dir="$kodak" --workdir="$root/$op"
done
