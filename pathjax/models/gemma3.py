"""Gemma 3 (text): served by the shared decoder (`pathjax.models.decoder`), whose config holds
what sets Gemma 3 apart. This module name stays for the code that imports it."""

from pathjax.models.decoder import Config, Model

__all__ = ["Config", "Model"]
