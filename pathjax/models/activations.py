"""The MLP activations of the decoder, by transformers' names (`hidden_act`, `hidden_activation`).

A name outside this table is refused rather than replaced: an MLP with the wrong nonlinearity
loads without error and gives plausible but wrong logits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "silu": jax.nn.silu,
    # transformers' "gelu_pytorch_tanh" and "gelu_new" are both the tanh approximation.
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # Exact (erf).
}
# Other names transformers gives the same functions; configs keep the canonical name.
ALIASES = {"swish": "silu", "gelu_new": "gelu_pytorch_tanh"}


def canonical_activation(name: str, *, field: str = "hidden_act") -> str:
    name = ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        supported = ", ".join([*ACTIVATIONS, *ALIASES])
        raise ValueError(f"{field}={name!r} is not supported; supported activations: {supported}.")
    return name
