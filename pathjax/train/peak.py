"""The measured matmul peak of one device, the ceiling that MFU is reported against.

CPUs have no published peak that XLA reaches, and accelerator datasheets assume ideal shapes;
a large square matmul in the run's precision, timed in the same process, is an honest
ceiling. It is the best of several timings (a peak, not a typical rate): a median taken while
another job held the cores put the ceiling below what the run then reached, and MFU above 1.
Pass `train.peak_flops_per_device` to use a datasheet number instead.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

_MEASURED: dict[tuple[str, int], float] = {}


def measured_matmul_peak(
    dtype: str = "float32", size: int | None = None, repeats: int = 5, *, fresh: bool = False
) -> float:
    """Best FLOP/s of a `[n, n] @ [n, n]` matmul (float32 accumulation) on the first device,
    measured once per process (`fresh=True` measures again and keeps the higher)."""
    if size is None:
        size = 2048 if jax.default_backend() == "cpu" else 8192
    key = (dtype, size)
    if key in _MEASURED and not fresh:
        return _MEASURED[key]
    device = jax.devices()[0]
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(key_a, (size, size), jnp.dtype(dtype)), device)
    b = jax.device_put(jax.random.normal(key_b, (size, size), jnp.dtype(dtype)), device)
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    matmul(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    _MEASURED[key] = max(_MEASURED.get(key, 0.0), 2 * size**3 / best)
    return _MEASURED[key]


def mfu_ceiling(dtype: str, measured: float, best_achieved: float) -> tuple[float, str]:
    """The MFU ceiling: the measured matmul peak, measured again if a side beat it (it ran
    under load), and raised to the best side's rate if still beaten (then labelled so), so
    that MFU never exceeds 1."""
    label = f"measured {dtype} matmul peak (best of 5)"
    if best_achieved <= measured:
        return measured, label
    measured = max(measured, measured_matmul_peak(dtype, fresh=True))
    if best_achieved <= measured:
        return measured, label + ", measured again after a side beat the first measurement"
    return best_achieved, "the fastest side's rate (it beat the measured matmul peak)"
