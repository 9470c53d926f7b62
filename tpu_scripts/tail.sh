#!/usr/bin/env bash
# Shows the progress line of worker 0 (the only one that logs).
set -euo pipefail
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=0 --command="tail -f ~/train.log"
