"""The measured matmul peak of one device, the ceiling that MFU is reported against.

CPUs have no published peak that XLA reaches, and accelerator datasheets assume ideal shapes;
a large square matmul in the run's precision, timed in the same process, is an honest
ceiling. Pass `train.peak_flops_per_device` to use a datasheet number instead.
"""

from __future__ import annotations

import functools
import statistics
import time

import jax
import jax.numpy as jnp


@functools.cache
def measured_matmul_peak(
    dtype: str = "float32", size: int | None = None, repeats: int = 5
) -> float:
    """FLOP/s of a `[n, n] @ [n, n]` matmul (float32 accumulation) on the first device."""
    if size is None:
        size = 2048 if jax.default_backend() == "cpu" else 8192
    device = jax.devices()[0]
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(key_a, (size, size), jnp.dtype(dtype)), device)
    b = jax.device_put(jax.random.normal(key_b, (size, size), jnp.dtype(dtype)), device)
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    matmul(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)
