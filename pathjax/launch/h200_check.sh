#!/usr/bin/env bash
# The GPU check of issue 7, prepared for one lent NVIDIA H200 (JAX with CUDA installed there,
# nothing downloadable): the LoRA training step and the probe evaluator on a Llama-3.2-1B-shaped
# model with random weights, bfloat16, pathjax alone (torch's reference runs on the CPU and is
# off), MFU against the bf16 matmul peak measured in the same process; then (issue 17) three
# SmolLM2-135M adapters trained stacked in one step against three sequential runs, the model a
# study trains; then (issue 18) the layer layouts, loop against scan (compile and step time,
# remat none and dots), with the attention backend that `auto` picks there (cuDNN's fused
# attention for bf16 on a GPU). About 10 minutes at most.
#
# Through the device tool, from the repo root, with the missing Python packages as wheels in
# .whl (BENCHMARKS.md, "The H200 check", says how to fetch them):
#   run(command="bash pathjax/launch/h200_check.sh", carry=[".whl"], timeout_s=600)
# Writes train.json, evaluate.json, stacked.json, layers.json, their logs and env.txt to $OUT
# when set (else a temp folder).
#
# Every setting below can be overridden from the environment; a smoke test of the same commands
# on CPU, a few seconds of work:
#   WHEELS= PYTHON=python PRESET=tiny-llama SEQ_LEN=64 BATCH=2 FALLBACK_BATCH=2 REPEATS=1 \
#     EVAL_PRESET=tiny-smollm2 EVAL_TOKENIZER=smollm2-135m NUM_PROMPTS=2 EVAL_BATCH=2 \
#     EVAL_REPEATS=1 STACKED_PRESET=tiny-llama STACKED_SEQ_LEN=16 STACKED_BATCH=2 \
#     STACKED_STEPS=2 LAYERS_PRESET=tiny-llama LAYERS_SEQ_LEN=16 LAYERS_BATCH=2 LAYERS_REPEATS=1 \
#     ATTENTION=auto bash pathjax/launch/h200_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."  # The repository root (the script lives in pathjax/launch/).

PYTHON=${PYTHON:-python3}         # The image's python3 holds JAX (CUDA 13 plugin) and torch.
WHEELS=${WHEELS-.whl}             # Folder of wheels to install first; empty: none.
PRESET=${PRESET:-llama-3.2-1b}    # 16 layers, hidden 2048, vocab 128,256, tied head.
SEQ_LEN=${SEQ_LEN:-2048}
BATCH=${BATCH:-8}                 # 16,384 tokens per step.
FALLBACK_BATCH=${FALLBACK_BATCH:-4}  # Retried once if BATCH runs out of memory.
REPEATS=${REPEATS:-10}
DTYPES=${DTYPES:-bfloat16}
EVAL_PRESET=${EVAL_PRESET:-$PRESET}
# The embedded SmolLM2 tokenizer needs a 98 MB wheel; GPT-2's (50,257 tokens) fits any 1B vocab.
EVAL_TOKENIZER=${EVAL_TOKENIZER:-gpt2}
NUM_PROMPTS=${NUM_PROMPTS:-32}
EVAL_BATCH=${EVAL_BATCH:-16}      # Two passes per part: few shapes, so little compilation.
EVAL_REPEATS=${EVAL_REPEATS:-3}
TRAIN_TIMEOUT_S=${TRAIN_TIMEOUT_S:-170}
FALLBACK_TIMEOUT_S=${FALLBACK_TIMEOUT_S:-100}
EVAL_TIMEOUT_S=${EVAL_TIMEOUT_S:-200}
# Issue 17: the study's model, whose small per-adapter batches leave an accelerator mostly idle.
STACKED_PRESET=${STACKED_PRESET:-smollm2-135m}
STACKED_SEQ_LEN=${STACKED_SEQ_LEN:-256}
STACKED_BATCH=${STACKED_BATCH:-8}  # Per adapter and step, as in the study's training.
ADAPTERS=${ADAPTERS:-3}
STACKED_STEPS=${STACKED_STEPS:-10}  # Per adapter; the first compiles.
# 4 compiles (stacked; sequential shared, 2 more).
STACKED_TIMEOUT_S=${STACKED_TIMEOUT_S:-110}
# Issue 18: loop against scan, each compiled cold, remat none and dots (4 compiles).
LAYERS_PRESET=${LAYERS_PRESET:-smollm2-135m}
LAYERS_SEQ_LEN=${LAYERS_SEQ_LEN:-1024}
LAYERS_BATCH=${LAYERS_BATCH:-8}
LAYERS_REPEATS=${LAYERS_REPEATS:-5}
ATTENTION=${ATTENTION:-auto}       # auto: cuDNN where it applies on a GPU (logged), else XLA.
# Last, so a timeout here costs no other result.
# The steps' limits add up to 580 s (680 s if the train step falls back): run the script with
# the device tool's 600 s limit; a step cut short loses only itself.
LAYERS_TIMEOUT_S=${LAYERS_TIMEOUT_S:-100}

export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# Each step is its own process and the only one on the GPU: let XLA take most of the 141 GB
# (the default is 75%), leaving room for cuBLAS/cuDNN workspaces outside its pool.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.90}

OUT_DIR=${OUT:-$(mktemp -d -t h200_check.XXXXXX)}
mkdir -p "$OUT_DIR"
echo "== results go to $OUT_DIR"

{
  date -u
  if command -v nvidia-smi >/dev/null; then nvidia-smi; fi
  "$PYTHON" --version
  "$PYTHON" -m pip list 2>/dev/null \
    | grep -iE '^(jax|jaxlib|jax-cuda.*|flax|optax|orbax-checkpoint|numpy|protobuf|transformers) ' \
    || true
} >"$OUT_DIR/env.txt" 2>&1
cat "$OUT_DIR/env.txt"

if [[ -n $WHEELS && -d $WHEELS ]] && compgen -G "$WHEELS/*.whl" >/dev/null; then
  site=/tmp/pathjax-site
  rm -rf "$site"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$WHEELS"/*.whl
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  echo "== installed $(ls "$WHEELS" | wc -l) wheels from $WHEELS into $site"
fi

# Fails here, in seconds, if a package is missing, rather than after a model is built.
backend=$("$PYTHON" -c "
import pathjax.launch.benchmark, jax
print(jax.default_backend())
print('jax', jax.__version__, jax.devices(), file=__import__('sys').stderr)
")
if [[ $backend != gpu ]]; then
  echo "== WARNING: JAX runs on '$backend', not a GPU: these are not H200 numbers."
fi

step() {  # step NAME TIMEOUT_S FLAGS...: one benchmark process, its table, log and JSON.
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s): python -m pathjax.launch.benchmark $*"
  local start=$SECONDS rc=0
  timeout --kill-after=15 "$limit" "$PYTHON" -m pathjax.launch.benchmark "$@" \
    --out="$OUT_DIR/$name.json" 2>&1 | tee "$OUT_DIR/$name.log" || rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  return "$rc"
}

failed=0
train_flags=(--workload=train --preset="$PRESET" --seq_len="$SEQ_LEN" --dtypes="$DTYPES"
  --repeats="$REPEATS" --attention="$ATTENTION" --noreference)
if ! step train "$TRAIN_TIMEOUT_S" "${train_flags[@]}" --batch="$BATCH"; then
  if ((FALLBACK_BATCH < BATCH)) \
    && grep -qiE 'RESOURCE_EXHAUSTED|out of memory' "$OUT_DIR/train.log"; then
    step train_fallback "$FALLBACK_TIMEOUT_S" "${train_flags[@]}" --batch="$FALLBACK_BATCH" \
      || failed=1
  else
    failed=1
  fi
fi

step evaluate "$EVAL_TIMEOUT_S" --workload=evaluate --preset="$EVAL_PRESET" --random_weights \
  --tokenizer="$EVAL_TOKENIZER" --dtypes="$DTYPES" --num_prompts="$NUM_PROMPTS" \
  --batch="$EVAL_BATCH" --repeats="$EVAL_REPEATS" --noreference || failed=1

step stacked "$STACKED_TIMEOUT_S" --workload=stacked --preset="$STACKED_PRESET" \
  --seq_len="$STACKED_SEQ_LEN" --batch="$STACKED_BATCH" --adapters="$ADAPTERS" \
  --dtypes="$DTYPES" --repeats="$STACKED_STEPS" --noreference || failed=1

step layers "$LAYERS_TIMEOUT_S" --workload=layers --preset="$LAYERS_PRESET" \
  --seq_len="$LAYERS_SEQ_LEN" --batch="$LAYERS_BATCH" --dtypes="$DTYPES" \
  --repeats="$LAYERS_REPEATS" --remat=none,dots --attention="$ATTENTION" || failed=1

"$PYTHON" - "$OUT_DIR" <<'EOF'
import glob, json, os, sys

print("== summary")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    report = json.load(open(path))
    if report["workload"] == "stacked":
        for r in report["results"]:
            print(
                f"stacked {report['preset']} {r['dtype']} {r['side']}, {r['adapters']} adapters "
                f"x {report['batch']}x{report['seq_len']}: {r['tokens_per_s']:.0f} tokens/s, "
                f"wall {r['wall_s']:.1f} s for {r['steps']} steps (compiles in), "
                f"MFU {100 * r['mfu']:.1f}%"
            )
        for dtype, versus in report["stacked_vs"].items():
            for other, ratio in versus.items():
                print(
                    f"stacked / {other} ({dtype}): {ratio['tokens_per_s']:.2f}x tokens/s, "
                    f"wall time {ratio['wall_time']:.2f}x (issue 17 goal: 1.8x)"
                )
        continue
    if report["workload"] == "layers":
        for r in report["results"]:
            print(
                f"layers {report['preset']} {r['dtype']} {r['layout']} remat {r['remat']} "
                f"(attention {report['attention']}): lower {r['lower_s']:.1f} s, compile "
                f"{r['compile_s']:.1f} s, {r['median_s'] * 1e3:.1f} ms/step, "
                f"{r['tokens_per_s']:.0f} tokens/s, MFU {100 * r['mfu']:.1f}%"
            )
        for setting, ratio in report["scan_vs_loop"].items():
            print(
                f"scan / loop ({setting}): compile {ratio['compile']:.2f}x, "
                f"step time {ratio['step']:.2f}x"
            )
        continue
    for r in report["results"]:
        if report["workload"] == "train":
            peak = report["peak_flops_per_s"][r["dtype"]]
            print(
                f"train {report['preset']} {r['dtype']} {r['batch']}x{r['seq_len']}: "
                f"{r['median_s'] * 1e3:.1f} ms/step, {r['tokens_per_s']:.0f} tokens/s, "
                f"{r['gflops_per_s'] / 1e3:.1f} TFLOP/s, MFU {100 * r['mfu']:.1f}% of a measured "
                f"{peak / 1e12:.0f} TFLOP/s (issue 7 target: 45%)"
            )
        else:
            print(
                f"evaluate {report['preset']} {r['dtype']} {r['part']}: {r['median_s']:.3f} s, "
                f"{r['prompts_per_s']:.1f} prompts/s, {r['positions_per_s']:.0f} positions/s, "
                f"compile {r['compile_s']:.1f} s"
            )
EOF
exit "$failed"
