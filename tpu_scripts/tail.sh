#!/usr/bin/env bash
# Shows the progress line of worker 0 (the only one that logs).
set -euo pipefail
source "$(dirname "$0")/common.sh"
tpu_ssh "tail -f ~/train.log" 0
