"""The configuration of the Llama-like decoder, and its conversion from and to transformers'.

One decoder serves Llama (1-3.x, SmolLM2), Qwen2, Mistral and Gemma 3 (text). What tells them
apart is data here: biases (Llama's optional ones, Qwen2's q/k/v), the activation, a sliding
window on every layer (Mistral) or on some (Qwen2, Gemma 3), and Gemma 3's differences from
Llama: RMSNorms scaled by `(1 + w)`, norms after each sublayer as well as before, per-head q/k
norms, embeddings scaled by `sqrt(hidden_size)`, a rotary base of its own for local layers,
attention scaled by `query_pre_attn_scalar ** -0.5`, and soft-capped final logits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pathjax.models import activations, hf_attributes, layer_stack, layers

MODEL_TYPES = ("llama", "qwen2", "mistral", "gemma3_text")
LAYER_TYPES = ("sliding_attention", "full_attention")
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mistral": "MistralForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
}
# transformers' Gemma 3 rotary bases (Gemma3TextConfig.default_theta) when a config has none.
GEMMA3_GLOBAL_THETA = 1_000_000.0
GEMMA3_LOCAL_THETA = 10_000.0


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-5
    # RMSNorms scale by `norm_offset + w` (Gemma: 1, weights stored around zero).
    norm_offset: float = 0.0
    scale_embeddings: bool = False  # Multiply embeddings by sqrt(hidden_size) (Gemma).
    activation: str = "silu"  # An `activations.ACTIVATIONS` name: the MLP's gate nonlinearity.
    # Rotary embedding of full-attention layers, and of sliding ones when `rope_local` is None.
    rope_global: layers.RopeConfig = layers.RopeConfig()
    rope_local: layers.RopeConfig | None = None
    sliding_window: int | None = None
    # Per layer: "full_attention" or "sliding_attention"; None = every layer is full, or
    # every layer slides when `sliding_window` is set (Mistral).
    layer_types: tuple[str, ...] | None = None
    query_pre_attn_scalar: float | None = None  # Logits scaled by its inverse sqrt; None: head_dim.
    attn_logit_softcapping: float | None = None  # tanh soft-capping of attention logits.
    final_logit_softcapping: float | None = None  # tanh soft-capping of the output logits.
    qk_norm: bool = False  # Per-head RMSNorms on queries and keys before the rotary embedding.
    # Norms after the attention and MLP sublayers too: `x + post(sublayer(pre(x)))` (Gemma).
    post_sublayer_norms: bool = False
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02  # Std of random initialization (tests, presets).
    model_type: str = "llama"
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    attention: str = "auto"  # Attention kernel (`attention_backends.BACKENDS`); not in HF.
    # Layers as one module with parameters stacked on a leading axis, run under `nnx.scan`
    # (`layer_stack`); not in HF. Compiles one layer instead of `num_layers`.
    scan_layers: bool = False
    remat: str = "none"  # Rematerialization of each layer: none, full, dots (`layer_stack`).

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads="
                f"{self.num_kv_heads} (grouped-query attention)."
            )
        activations.canonical_activation(self.activation)
        layer_stack.check_remat(self.remat)
        if self.layer_types is None:
            return
        if len(self.layer_types) != self.num_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries for {self.num_layers} layers."
            )
        unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unknown:
            raise ValueError(
                f"Decoder layer types {unknown} are not supported; supported: {LAYER_TYPES}."
            )

    def is_sliding_layer(self, i: int) -> bool:
        if self.layer_types is None:
            return self.sliding_window is not None
        return self.layer_types[i] == "sliding_attention"

    def window_of_layer(self, i: int) -> int | None:
        return self.sliding_window if self.is_sliding_layer(i) else None

    def rope_of_layer(self, i: int) -> layers.RopeConfig:
        if self.rope_local is not None and self.is_sliding_layer(i):
            return self.rope_local
        return self.rope_global

    @property
    def attention_scale(self) -> float:
        return (self.query_pre_attn_scalar or self.head_dim) ** -0.5

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        """From a transformers config dict; every attribute is read, ignored as irrelevant to
        the forward pass (`hf_attributes.IGNORED`), or refused by name."""
        model_type = hf.get("model_type", "llama")
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"{model_type!r} is not served by the decoder ({', '.join(MODEL_TYPES)})."
            )
        hf_attributes.refuse_unknown(hf, model_type)
        _refuse_unsupported_values(hf)
        num_heads = hf["num_attention_heads"]
        common = dict(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
            initializer_range=hf.get("initializer_range", 0.02),
            model_type=model_type,
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
            pad_token_id=hf.get("pad_token_id"),
        )
        family = _gemma3_fields(hf) if model_type == "gemma3_text" else _llama_fields(hf)
        return cls(**common, **family)

    def to_hf(self) -> dict[str, Any]:
        hf: dict[str, Any] = {
            "model_type": self.model_type,
            "architectures": [ARCHITECTURES[self.model_type]],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }
        if self.model_type == "gemma3_text":
            return {**hf, **self._gemma3_to_hf()}
        hf["hidden_act"] = self.activation
        hf["rope_parameters"] = self.rope_global.to_hf()
        if self.pad_token_id is not None:
            hf["pad_token_id"] = self.pad_token_id
        if self.model_type == "llama":
            hf["attention_bias"] = self.o_bias
            hf["mlp_bias"] = self.mlp_bias
        if self.model_type == "mistral":
            hf["sliding_window"] = self.sliding_window
        if self.model_type == "qwen2":
            hf["use_sliding_window"] = self.sliding_window is not None
            hf["sliding_window"] = self.sliding_window
            if self.layer_types is not None:
                hf["layer_types"] = list(self.layer_types)
        return hf

    def _gemma3_to_hf(self) -> dict[str, Any]:
        return {
            "layer_types": list(self.layer_types),
            "sliding_window": self.sliding_window,
            "hidden_activation": self.activation,
            "rope_parameters": {
                "full_attention": self.rope_global.to_hf(),
                "sliding_attention": (self.rope_local or self.rope_global).to_hf(),
            },
            # transformers' config class insists on an int.
            "query_pre_attn_scalar": int(self.query_pre_attn_scalar or self.head_dim),
            "final_logit_softcapping": self.final_logit_softcapping,
            "attention_bias": self.o_bias,
            "pad_token_id": self.pad_token_id,
        }


def _refuse_unsupported_values(hf: dict[str, Any]) -> None:
    if hf.get("rope_interleaved"):
        raise ValueError(
            "rope_interleaved=True (rotary pairs of adjacent elements) is not supported; pathjax "
            "and transformers rotate the two halves of each head."
        )
    if hf.get("attention_dropout"):
        raise ValueError(
            f"attention_dropout={hf['attention_dropout']} is not supported: pathjax applies no "
            "dropout inside the base model, so training would differ from transformers'. Set "
            "it to 0.0 in config.json to load the checkpoint anyway."
        )


def _llama_fields(hf: dict[str, Any]) -> dict[str, Any]:
    """Llama, Qwen2 and Mistral: which biases, which layers slide."""
    model_type = hf.get("model_type", "llama")
    attention_bias = model_type == "llama" and bool(hf.get("attention_bias", False))
    sliding_window, layer_types = None, None
    if model_type == "mistral":
        sliding_window = hf.get("sliding_window")
    if model_type == "qwen2" and hf.get("use_sliding_window", False):
        sliding_window = hf.get("sliding_window", 4096)
        # transformers' Qwen2: layers from `max_window_layers` on slide, unless listed.
        layer_types = hf.get("layer_types") or [
            "sliding_attention" if i >= hf.get("max_window_layers", 28) else "full_attention"
            for i in range(hf["num_hidden_layers"])
        ]
    return dict(
        rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
        activation=activations.canonical_activation(hf.get("hidden_act", "silu")),
        rope_global=layers.RopeConfig.from_hf(hf),
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        qkv_bias=model_type == "qwen2" or attention_bias,
        o_bias=attention_bias,
        mlp_bias=model_type == "llama" and bool(hf.get("mlp_bias", False)),
        sliding_window=sliding_window,
        layer_types=tuple(layer_types) if layer_types else None,
        max_position_embeddings=hf.get("max_position_embeddings", 2048),
    )


def _gemma3_fields(hf: dict[str, Any]) -> dict[str, Any]:
    if hf.get("use_bidirectional_attention"):
        raise ValueError(
            "Gemma 3 config has use_bidirectional_attention=True (an embedding model such "
            "as EmbeddingGemma); pathjax supports only the causal language model."
        )
    field = "hidden_activation" if hf.get("hidden_activation") else "hidden_act"
    activation = activations.canonical_activation(hf.get(field) or "gelu_pytorch_tanh", field=field)
    if activation != "gelu_pytorch_tanh":
        # Every Gemma 3 checkpoint uses the tanh gelu: another name in its config is refused
        # rather than trusted (the activations themselves are the decoder's to choose).
        raise ValueError(
            f"Gemma 3 config has {field}={activation!r}; pathjax supports only the tanh gelu "
            "('gelu_pytorch_tanh') for Gemma 3."
        )
    num_layers = hf["num_hidden_layers"]
    layer_types = hf.get("layer_types")
    if not layer_types:
        # Older configs give the period of global layers instead (transformers' fallback).
        pattern = hf.get("sliding_window_pattern") or hf.get("_sliding_window_pattern") or 6
        layer_types = [
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
            for i in range(num_layers)
        ]
    rope_global, rope_local = _gemma3_ropes(hf)
    attention_bias = bool(hf.get("attention_bias", False))
    # attn_logit_softcapping is read and not applied: transformers' Gemma 3 attention never
    # passes it on (Gemma 2 did), and every Gemma 3 checkpoint leaves it None.
    return dict(
        rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
        norm_offset=1.0,
        scale_embeddings=True,
        activation=activation,
        rope_global=rope_global,
        rope_local=rope_local,
        sliding_window=hf.get("sliding_window", 4096),
        layer_types=tuple(layer_types),
        query_pre_attn_scalar=hf.get("query_pre_attn_scalar", 256),
        final_logit_softcapping=hf.get("final_logit_softcapping"),
        qk_norm=True,
        post_sublayer_norms=True,
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
        qkv_bias=attention_bias,
        o_bias=attention_bias,
        max_position_embeddings=hf.get("max_position_embeddings", 131072),
    )


def _gemma3_ropes(hf: dict[str, Any]) -> tuple[layers.RopeConfig, layers.RopeConfig]:
    """(global, local) rotary configs from transformers v5 per-layer-type `rope_parameters`, or
    from v4's `rope_theta` + `rope_scaling` (global) and `rope_local_base_freq` (local)."""
    params = hf.get("rope_parameters") or {}
    if "full_attention" in params or "sliding_attention" in params:
        full = dict(params.get("full_attention") or {})
        local = dict(params.get("sliding_attention") or {})
    else:
        full = {**(hf.get("rope_scaling") or {}), **params}
        local = {}
    full.setdefault("rope_theta", hf.get("rope_theta", GEMMA3_GLOBAL_THETA))
    local.setdefault("rope_theta", hf.get("rope_local_base_freq", GEMMA3_LOCAL_THETA))
    return (
        layers.RopeConfig.from_hf({"rope_parameters": full}),
        layers.RopeConfig.from_hf({"rope_parameters": local}),
    )
