"""The main job: the whole study in one command (data, adapters, probes, report); a rerun resumes.

python -m pathjax.launch.experiment --workdir=runs/study
python -m pathjax.launch.experiment --config=gpt2 --workdir=runs/gpt2-study
python -m pathjax.launch.experiment --config=smollm2_135m --also=gemma3_270m \
    --workdir=runs/two-architectures

The default config is the embedded SmolLM2-135M (pathjax/configs/smollm2_135m.py), sized to
finish on a 2-core CPU; `--config.<field>=value` overrides any field (pathjax/configs/base.py).
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import experiment, storage  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", "pathjax/configs/smollm2_135m.py", "Model config (with :variants)."
)
_ALSO = flags.DEFINE_multi_string(
    "also", [], "More model configs (file[:variants]): a study per architecture and a summary."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/study", "Where every stage writes its results.")


def main(argv):
    del argv
    from pathjax.configs import load

    configs = [_CONFIG.value, *(load.config_from_spec(spec) for spec in _ALSO.value)]
    results = experiment.run_experiment(configs, _WORKDIR.value)
    for result in results:
        for name, path in result["paths"].items():
            print(f"[{result['name']}] {name}: {storage.absolute(path)}")
    report = results[0]["paths"].get("report.md")
    if report:
        print(f"\nThe report: {storage.absolute(report)}")


def cli() -> None:
    """The console script (`pathjax-experiment`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
