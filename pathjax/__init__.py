"""pathjax: behavioral LoRA fine-tuning and probe evaluation of causal LMs, in JAX."""

__version__ = "0.1.0"


def load_model(source, dtype="float32", **kwargs):
    """Loads `(model, tokenizer)`; see `pathjax.models.load_model`."""
    from pathjax import models  # Imported lazily: `import pathjax` stays cheap.

    return models.load_model(source, dtype=dtype, **kwargs)
