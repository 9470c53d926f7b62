# Settings shared by the TPU scripts; override any of them in the environment.
: "${TPU_NAME:=disen-jax}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR_TYPE:=v4-32}"        # v4-32: 4 hosts x 4 chips = 16 devices; v5e: v5litepod-16
: "${RUNTIME_VERSION:=tpu-ubuntu2204-base}"  # v5e: v2-alpha-tpuv5-lite
: "${REPO_URL:=}"                     # where workers clone the library from (or use copy.sh)
: "${BUCKET:=YOUR_BUCKET}"                # a GCS bucket, mounted on every worker at /mnt/gcs
: "${WORKDIR:=/mnt/gcs/disen_jax/runs/uncoop_faces}"  # shared by all workers (checkpoints!)
: "${TFDS_DATA_DIR:=/mnt/gcs/tensorflow_datasets}"   # prepared tfds datasets (see prepare.sh)
tpu_ssh() {  # tpu_ssh "<command>" [worker]: runs on every worker of the slice (or on one)
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker="${2:-all}" --command="$1"
}
