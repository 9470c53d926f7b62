#!/usr/bin/env bash
# Launches one training job on all workers: ./launch.sh configs/uncoop_faces.py [extra flags]
# Every worker runs the same command; --multihost calls jax.distributed.initialize(), which
# finds the coordinator on Cloud TPU by itself. Logs go to ~/train.log on each worker.
set -euo pipefail
source "$(dirname "$0")/common.sh"
config="${1:-configs/uncoop_faces.py}"; shift || true
tpu_ssh "cd ~/disen_jax && . .venv/bin/activate && nohup python -m disen_jax.main --multihost \
  --config=$config --workdir=$WORKDIR $* > ~/train.log 2>&1 &"
echo "launched; follow it with tpu_scripts/tail.sh"
