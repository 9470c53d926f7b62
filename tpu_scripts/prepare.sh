#!/usr/bin/env bash
# Prepares the tfds datasets a config reads, once, into the bucket ($TFDS_DATA_DIR on /mnt/gcs):
#   tpu_scripts/prepare.sh configs/<file>.py
# Runs on worker 0 only, with TensorFlow (the .[prepare] extra; training never needs it). Sources
# that read files (folders, pix2pix, cars3d) need no preparing: copy them into the bucket instead.
set -euo pipefail
source "$(dirname "$0")/common.sh"
config="${1:?usage: prepare.sh configs/<file>.py [extra flags]}"; shift || true
tpu_ssh "cd ~/disen_jax && . .venv/bin/activate && pip install -q -e '.[prepare]' && \
  TFDS_DATA_DIR=$TFDS_DATA_DIR python -m disen_jax.main --mode=prepare --config=$config $*" 0
