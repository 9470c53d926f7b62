#!/usr/bin/env bash
# Puts this checkout on every worker (clone REPO_URL if set, else copy the working tree).
set -euo pipefail
source "$(dirname "$0")/common.sh"
if [ -n "$REPO_URL" ]; then
  tpu_ssh "rm -rf ~/disen_jax && git clone -q $REPO_URL ~/disen_jax"
else
  root="$(cd "$(dirname "$0")/.." && pwd)"
  tar -C "$root" --exclude=.venv --exclude=.git -czf /tmp/disen_jax.tgz .
  gcloud compute tpus tpu-vm scp /tmp/disen_jax.tgz "$TPU_NAME":~ --zone="$ZONE" --worker=all
  tpu_ssh "rm -rf ~/disen_jax && mkdir ~/disen_jax && tar -C ~/disen_jax -xzf ~/disen_jax.tgz"
fi
# Data: synthfaces is generated on each worker. tfds datasets are prepared once into the bucket
# (prepare.sh) and read from /mnt/gcs. Image folders, pix2pix folders and Cars3D files go in the
# bucket too (every worker reads only its share of each batch), or are copied to each worker:
#   tpu_ssh "gsutil -m cp -r gs://YOUR_BUCKET/facades ~/data/"
# The workdir must be shared by all workers (orbax writes one checkpoint from all processes):
tpu_ssh "sudo mkdir -p /mnt/gcs && (mountpoint -q /mnt/gcs || (which gcsfuse >/dev/null || \
  (sudo apt-get -qq update && sudo apt-get -qq install -y gcsfuse)) && \
  sudo gcsfuse --implicit-dirs -o allow_other $BUCKET /mnt/gcs)"
