"""Test-wide environment: 8 CPU devices, no hub access, a persistent compilation cache.

Runs before jax is imported, so environment variables are enough, and subprocesses (the
launcher tests) inherit them too.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Process-wide: the sharding tests need `jax.devices()` to have 8. Tests that do not test
# sharding set their configs' mesh to (1, 1, 1): eight virtual devices only add overhead there.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Compiling the same tiny models is most of a rerun's time; the cache keeps them across runs,
# xdist workers and launcher subprocesses. A maximum size turns on jax's LRU eviction and, with
# it, the file lock that keeps two processes from reading an entry while one writes it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(REPO, ".cache", "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024**3))


def pytest_collection_modifyitems(items):
    """The `longest` tests first (stable otherwise): the order of a serial run. Under
    `make test-all`, xdist orders files by their number of tests, and this order breaks its
    ties. `make test` deselects them.
    """
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)
