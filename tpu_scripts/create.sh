#!/usr/bin/env bash
# Creates a Cloud TPU VM or pod slice and installs the library (.[tpu]) on every worker.
# The TPU images ship Python 3.10; the library needs 3.11, installed here from Ubuntu's packages.
set -euo pipefail
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
"$(dirname "$0")/copy.sh"
tpu_ssh "(command -v python3.11 >/dev/null || (sudo apt-get -qq update && \
  sudo apt-get -qq install -y python3.11 python3.11-venv)) && cd ~/disen_jax && \
  python3.11 -m venv .venv && . .venv/bin/activate && pip install -q -U pip && pip install -q -e '.[tpu]' \
  && python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'"
