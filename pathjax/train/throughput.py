"""Training throughput and MFU over a logging window, against an honest, labelled ceiling."""

from __future__ import annotations

import time

import jax
import tqdm

from pathjax.models import flops
from pathjax.train import peak


class Throughput:
    """Tokens/s and MFU over a logging window, against an honest, labelled ceiling.

    Only real (unpadded) tokens count, for throughput and for FLOPs: padding is work a better
    batching would not do. The ceiling is `train.peak_flops_per_device` (a datasheet figure)
    or the measured matmul peak; if a window ever beats a measured ceiling, the peak is
    measured again (the first measurement ran under load) and the ceiling only ever rises.
    """

    def __init__(self, config, model_config, adapter_shapes):
        t = config.train
        self.model_config, self.adapter_shapes = model_config, adapter_shapes
        self.datasheet = float(t.peak_flops_per_device or 0.0)
        self.dtype = config.model.dtype
        self.ceiling = self.datasheet or peak.measured_matmul_peak(self.dtype)
        self.label = "datasheet (train.peak_flops_per_device)" if self.datasheet else "measured"
        self.reset()

    def describe(self) -> str:
        what = (
            "the configured datasheet peak"
            if self.datasheet
            else f"the measured {self.dtype} matmul peak (best of 5)"
        )
        return f"MFU ceiling: {what}, {self.ceiling / 1e9:.1f} GFLOP/s per device"

    def reset(self) -> None:
        self.start, self.tokens, self.flops = time.perf_counter(), 0.0, 0.0

    def add(self, real_tokens_k, target_tokens_k, rows: int) -> None:
        for tokens, head in zip(real_tokens_k, target_tokens_k, strict=True):
            mean_length = max(tokens / max(rows, 1), 1.0)
            self.tokens += tokens
            self.flops += flops.lora_training_flops(
                self.model_config, self.adapter_shapes, tokens, mean_length, head
            )

    def window(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        achieved = self.flops / elapsed / jax.device_count()
        if achieved > self.ceiling and not self.datasheet:
            self.ceiling = max(self.ceiling, peak.measured_matmul_peak(self.dtype, fresh=True))
        if achieved > self.ceiling:
            # Still above: the matmul benchmark is not this machine's peak. Say so rather
            # than report an MFU above 1.
            tqdm.tqdm.write(
                f"WARNING: {achieved / 1e9:.1f} GFLOP/s per device beats the MFU ceiling "
                f"({self.label}, {self.ceiling / 1e9:.1f}); the ceiling is raised to it."
            )
            self.ceiling = achieved
        return {
            "tokens_per_s": self.tokens / elapsed,
            "mfu": achieved / self.ceiling,
            "mfu_ceiling_flops_per_s": self.ceiling,
        }
