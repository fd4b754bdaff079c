"""AdamW with linear warmup, cosine decay and global-norm clipping (optax)."""

from __future__ import annotations

import optax


def learning_rate_schedule(train_config) -> optax.Schedule:
    warmup = min(train_config.warmup_steps, max(train_config.num_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=train_config.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(train_config.num_steps, warmup + 1),
        end_value=train_config.learning_rate * train_config.final_lr_fraction,
    )


def make_optimizer(train_config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = learning_rate_schedule(train_config)
    tx = optax.chain(
        optax.clip_by_global_norm(train_config.max_grad_norm),
        optax.adamw(
            schedule,
            b1=train_config.b1,
            b2=train_config.b2,
            eps=1e-8,
            weight_decay=train_config.weight_decay,
        ),
    )
    return tx, schedule
