"""`pathjax.bench.profile`: the per-operation summary of a profiled call."""

import jax
import jax.numpy as jnp

from pathjax.bench import profile


def test_profile_of_a_jitted_call_names_its_operations(tmp_path):
    fn = jax.jit(lambda a: jnp.tanh(a @ a) @ a)
    a = jnp.ones((128, 128))
    fn(a).block_until_ready()  # Compiled outside the profile, as the benchmark does.
    ops = profile.profile_call(lambda: fn(a), str(tmp_path))
    names = {o.op for o in ops}
    assert ops and all(o.ms >= 0 and o.count >= 1 for o in ops)
    assert abs(sum(o.share for o in ops) - 1.0) < 1e-6
    assert not any(n.startswith(("$", "end")) or "::" in n for n in names), names
    assert 0 < profile.matmul_share(ops) <= 1, names  # Two matmuls and a tanh.
    assert "matmuls:" in profile.format_profile(ops)


def test_a_loop_is_counted_by_its_body_not_twice(tmp_path):
    fn = jax.jit(lambda a: jax.lax.fori_loop(0, 4, lambda i, x: jnp.tanh(x @ a), a))
    a = jnp.ones((128, 128)) / 128
    fn(a).block_until_ready()
    ops = profile.profile_call(lambda: fn(a), str(tmp_path))
    names = {o.op for o in ops}
    assert "while" not in names, names  # Its event spans the body's operations.
    assert profile.matmul_share(ops) > 0, names  # The body's matmul is counted.
    assert abs(sum(o.share for o in ops) - 1.0) < 1e-6
