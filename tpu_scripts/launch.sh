#!/usr/bin/env bash
# Launches one training job on all workers: ./launch.sh configs/uncoop_faces.py [extra flags]
# Every worker runs the same command; --multihost calls jax.distributed.initialize(), which
# finds the coordinator on Cloud TPU by itself. Each worker decodes only its share of every
# global batch (config.batch_size must be a multiple of the slice's device count). tfds data is
# read from $TFDS_DATA_DIR (see prepare.sh). Logs go to ~/train.log on each worker.
set -euo pipefail
source "$(dirname "$0")/common.sh"
config="${1:-configs/uncoop_faces.py}"; shift || true
tpu_ssh "cd ~/disen_jax && . .venv/bin/activate && TFDS_DATA_DIR=$TFDS_DATA_DIR nohup \
  python -m disen_jax.main --multihost --config=$config --workdir=$WORKDIR $* > ~/train.log 2>&1 &"
echo "launched; follow it with tpu_scripts/tail.sh"
