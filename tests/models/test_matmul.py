"""`layers.matmul` / `matmul_transposed`: the products every linear layer and tied head use.

Their gradient rule is custom (bf16 cotangents in bf16 x bf16 -> f32 dots, for XLA's fast CPU
kernel), so it is checked against JAX's own differentiation of the plain product.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pathjax.models import layers


def _plain(x, w, transposed):
    return jnp.dot(x.astype(jnp.float32), (w.T if transposed else w).astype(jnp.float32))


def _ours(x, w, transposed):
    fn = layers.matmul_transposed if transposed else layers.matmul
    return fn(x, w, jnp.float32)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)])
def test_values_and_gradients_match_plain_jax(transposed, dtype, tol):
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, 5, 8)).astype(dtype)
    w = jax.random.normal(kw, (6, 8) if transposed else (8, 6)).astype(dtype)

    def loss(fn, x, w):
        return jnp.sum(jnp.sin(fn(x, w, transposed)))

    np.testing.assert_allclose(_ours(x, w, transposed), _plain(x, w, transposed), atol=tol)
    got = jax.grad(lambda x, w: loss(_ours, x, w), argnums=(0, 1))(x, w)
    want = jax.grad(lambda x, w: loss(_plain, x, w), argnums=(0, 1))(
        x.astype(jnp.float32), w.astype(jnp.float32)
    )
    for g, r, name in zip(got, want, ("x", "w"), strict=True):
        assert g.dtype == dtype, name  # Gradients in the operands' dtype, as JAX's rule.
        scale = float(jnp.max(jnp.abs(r)))
        np.testing.assert_allclose(np.asarray(g, np.float32), r, atol=tol * scale, err_msg=name)


def test_bf16_backward_multiplies_bf16_operands():
    """JAX's own rule would multiply the float32 cotangent by the bf16 weight (a mixed product
    that XLA's CPU runs at float32 speed); ours keeps both operands bf16."""
    x = jnp.ones((4, 8), jnp.bfloat16)
    w = jnp.ones((8, 6), jnp.bfloat16)
    jaxpr = jax.make_jaxpr(jax.grad(lambda x: jnp.sum(layers.matmul(x, w, jnp.float32))))(x)
    # The forward dot sits inside the custom_vjp_call; the top level holds the backward's two.
    dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
    assert len(dots) == 2, jaxpr
    for eqn in dots:
        assert all(v.aval.dtype == jnp.bfloat16 for v in eqn.invars), eqn


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)])
def test_batched_matmul_values_and_gradients(transposed, dtype, tol):
    ka, kb = jax.random.split(jax.random.key(1))
    a = jax.random.normal(ka, (3, 5, 8)).astype(dtype)
    b = jax.random.normal(kb, (3, 6, 8) if transposed else (3, 8, 6)).astype(dtype)

    def plain(a, b):
        spec = "nmk,npk->nmp" if transposed else "nmk,nkp->nmp"
        return jnp.einsum(spec, a.astype(jnp.float32), b.astype(jnp.float32))

    def ours(a, b):
        return layers.batched_matmul(a, b, transposed=transposed)

    np.testing.assert_allclose(ours(a, b), plain(a, b), atol=tol * 4)
    got = jax.grad(lambda a, b: jnp.sum(jnp.sin(ours(a, b))), argnums=(0, 1))(a, b)
    want = jax.grad(lambda a, b: jnp.sum(jnp.sin(plain(a, b))), argnums=(0, 1))(
        a.astype(jnp.float32), b.astype(jnp.float32)
    )
    for g, r, name in zip(got, want, ("a", "b"), strict=True):
        assert g.dtype == dtype, name
        scale = float(jnp.max(jnp.abs(r)))
        np.testing.assert_allclose(np.asarray(g, np.float32), r, atol=tol * scale, err_msg=name)
