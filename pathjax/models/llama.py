"""Llama, Qwen2, Mistral and SmolLM2: served by the shared decoder (`pathjax.models.decoder`).

This module name stays for the code and checkpoints' users that import it.
"""

from pathjax.models.decoder import Config, Model

__all__ = ["Config", "Model"]
