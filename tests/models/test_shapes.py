"""Full-size configs have the published parameter counts (abstractly: no memory used)."""

import pytest

from pathjax.models import presets, registry

EXPECTED = {
    "gpt2": 124_439_808,
    "smollm2-135m": 134_515_008,
    "qwen2.5-0.5b": 494_032_768,
    "llama-3.2-1b": 1_235_814_400,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_count(name):
    config = presets.preset_config(name)
    family = registry.family_of(config)
    abstract = registry.abstract_model(family, config)
    assert registry.count_params(abstract) == EXPECTED[name]


def test_every_parameter_has_logical_names():
    from flax import nnx

    config = presets.preset_config("qwen2.5-0.5b")
    abstract = registry.abstract_model(registry.family_of(config), config)
    for path, variable in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
        names = variable.get_metadata().get("out_sharding")
        assert names is not None and len(names) == len(variable.shape), path
