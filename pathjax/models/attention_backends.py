"""Which kernel computes attention (`model.attention`), and the call into each.

- `cpu`: `layers.dot_product_attention`, written for XLA's CPU (one batch axis per matmul).
- `xla`: `jax.nn.dot_product_attention(implementation="xla")`, the reference einsum form.
- `cudnn`: the same call with `implementation="cudnn"`: fused flash attention on NVIDIA GPUs.
- `auto`: `cudnn` on a GPU, `cpu` elsewhere; when the pick cannot run a model (a head size or
  dtype cuDNN lacks, soft-capped attention logits) the next one that can is used and the reason
  logged. An explicit choice that cannot run is an error naming the fix: silently swapping a
  kernel the user asked for would hide why a run is slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import logging

from pathjax.models import layers

BACKENDS = ("auto", "xla", "cudnn", "cpu")
# Tried in this order after the platform's first choice fails a check.
_FALLBACKS = ("xla", "cpu")
CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)


def check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"model.attention={name!r} is not one of {', '.join(BACKENDS)}.")
    return name


def _cudnn_max_head_dim() -> int:
    """256 from Hopper (compute capability 9.0) on, 128 before (jax's cuDNN checks)."""
    capability = getattr(jax.devices()[0], "compute_capability", "0.0")
    return 256 if tuple(int(x) for x in capability.split(".")) >= (9, 0) else 128


def why_not(backend: str, *, platform: str, head_dim: int, dtype, softcap: float | None) -> str:
    """Why `backend` cannot run this model's attention here; empty when it can."""
    if backend in ("xla", "cudnn") and softcap is not None:
        return "jax.nn.dot_product_attention has no attention-logit soft-capping"
    if backend != "cudnn":
        return ""
    if platform != "gpu":
        return f"cuDNN needs an NVIDIA GPU and JAX's platform is {platform!r}"
    if jnp.dtype(dtype) not in [jnp.dtype(d) for d in CUDNN_DTYPES]:
        return f"cuDNN flash attention needs bfloat16 or float16, not {jnp.dtype(dtype).name}"
    max_head_dim = _cudnn_max_head_dim()
    if head_dim % 8 or head_dim > max_head_dim:
        return (
            f"cuDNN needs a head size that is a multiple of 8 up to {max_head_dim}, not {head_dim}"
        )
    return ""


def choose(
    requested: str, *, head_dim: int, dtype, softcap: float | None, platform: str | None = None
) -> tuple[str, str]:
    """The backend to use and why, for a model's attention on `platform` (default: JAX's)."""
    platform = platform or jax.default_backend()
    check_name(requested)
    needs = dict(platform=platform, head_dim=head_dim, dtype=dtype, softcap=softcap)
    if requested != "auto":
        problem = why_not(requested, **needs)
        if problem:
            raise ValueError(
                f"model.attention={requested!r} cannot run here: {problem}. Set model.attention "
                "to 'auto' (picks a backend that can) or to 'cpu' (runs everywhere)."
            )
        return requested, f"model.attention={requested!r}"
    first = "cudnn" if platform == "gpu" else "cpu"
    problem = why_not(first, **needs)
    if not problem:
        return first, f"auto on platform {platform!r}"
    for backend in _FALLBACKS:
        if not why_not(backend, **needs):
            return backend, f"auto on platform {platform!r}: not {first} ({problem})"
    raise AssertionError("the cpu backend runs every model")


def choose_and_log(requested: str, *, head_dim: int, dtype, softcap: float | None) -> str:
    backend, reason = choose(requested, head_dim=head_dim, dtype=dtype, softcap=softcap)
    logging.info("Attention backend %s (%s).", backend, reason)
    return backend


def attend(
    backend: str,
    q_bthf: jax.Array,
    k_bskf: jax.Array,
    v_bskf: jax.Array,
    inputs: layers.AttentionInputs,
    sliding_window: int | None,
    *,
    scale: float,
    softcap: float | None = None,
) -> jax.Array:
    """Grouped-query attention of one layer by `backend` (`choose`'s answer, never "auto")."""
    if backend == "cpu":
        mask = inputs.mask(sliding_window)
        return layers.dot_product_attention(
            q_bthf, k_bskf, v_bskf, mask, scale=scale, softcap=softcap
        )
    b, t = q_bthf.shape[:2]
    s = k_bskf.shape[1]
    if inputs.cache_index is None and not isinstance(sliding_window, jax.Array):
        # Query i is key i: causality and the window are the kernel's own flags (cuDNN then
        # skips the masked blocks); padding is the only explicit mask. cuDNN wants it [b,1,t,s].
        mask = jnp.broadcast_to(inputs.key_valid_bs[:, None, None, :], (b, 1, t, s))
        window = None if sliding_window is None else (sliding_window - 1, 0)
        flags = dict(is_causal=True, local_window_size=window)
    else:
        # Decoding: queries sit at the cache index, so the flags' diagonal would be wrong.
        # A window that is scanned data (stacked layers) cannot be a flag, which must be static.
        mask, flags = inputs.mask(sliding_window), {}
    return jax.nn.dot_product_attention(
        q_bthf, k_bskf, v_bskf, mask=mask, scale=scale, implementation=backend, **flags
    )
