#!/usr/bin/env bash
# Creates a Cloud TPU VM or pod slice and installs the library on every worker.
set -euo pipefail
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
"$(dirname "$0")/copy.sh"
tpu_ssh "cd ~/disen_jax && python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[tpu]' \
  && python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'"
