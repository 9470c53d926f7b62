# Settings shared by the TPU scripts; override any of them in the environment.
: "${TPU_NAME:=disen-jax}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR_TYPE:=v4-32}"        # e.g. v5litepod-16 in a v5e zone
: "${RUNTIME_VERSION:=tpu-ubuntu2204-base}"
: "${REPO_URL:=}"                     # where workers clone the library from (or use copy.sh)
: "${BUCKET:=YOUR_BUCKET}"                # a GCS bucket, mounted on every worker at /mnt/gcs
: "${WORKDIR:=/mnt/gcs/disen_jax/runs/uncoop_faces}"  # shared by all workers (checkpoints!)
tpu_ssh() {  # tpu_ssh "<command>": runs on every worker of the slice
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="$1"
}
