#!/usr/bin/env bash
# Deletes the TPU (checkpoints in a gs:// workdir survive; relaunching resumes from them).
set -euo pipefail
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --quiet
