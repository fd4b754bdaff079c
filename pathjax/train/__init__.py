"""LoRA training: optimizer, pure jitted steps, checkpoints, metrics and the loop."""
