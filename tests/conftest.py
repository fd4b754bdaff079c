"""Test-wide environment: 8 CPU devices, no hub access. Runs before jax is imported."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items):
    """The `longest` tests first (stable otherwise): the order of a serial run. Under
    `make test`, xdist orders files by their number of tests, and this order breaks its ties.
    """
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)
