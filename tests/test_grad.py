import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import grad


def _f(params, x):
  return jnp.sum(jnp.tanh(x @ params["w"] + params["b"]) ** 2)


PARAMS = {"w": jnp.arange(6.0).reshape(3, 2) / 10, "b": jnp.array([0.1, -0.2])}
X = jnp.array([[1.0, 2.0, -1.0], [0.5, -0.3, 0.2]])


def test_freeze_gives_exact_zero_param_grads_but_passes_input_grads():
  g_params = jax.grad(lambda p: _f(grad.freeze(p), X))(PARAMS)
  for leaf in jax.tree_util.tree_leaves(g_params):
    assert np.all(np.asarray(leaf) == 0.0)
  g_x_frozen = jax.grad(lambda x: _f(grad.freeze(PARAMS), x))(X)
  g_x_plain = jax.grad(lambda x: _f(PARAMS, x))(X)
  np.testing.assert_allclose(g_x_frozen, g_x_plain)
  assert np.abs(np.asarray(g_x_plain)).sum() > 0


@pytest.mark.parametrize("scale", [1.0, 0.3, 2.5])
def test_reversed_gradient_is_minus_scale_times_plain(scale):
  plain = jax.grad(lambda x: _f(PARAMS, x))(X)
  reversed_ = jax.grad(lambda x: _f(PARAMS, grad.reverse_gradient(x, scale)))(X)
  np.testing.assert_allclose(reversed_, -scale * plain, rtol=1e-6)
  np.testing.assert_allclose(grad.reverse_gradient(X, scale), X)  # forward identity


def test_reverse_gradient_under_jit_and_on_pytrees():
  tree = {"a": X, "b": 2 * X}
  g = jax.jit(jax.grad(lambda t: jnp.sum(grad.reverse_gradient(t, 0.5)["a"]) + jnp.sum(t["b"])))(tree)
  np.testing.assert_allclose(g["a"], -0.5 * jnp.ones_like(X))
  np.testing.assert_allclose(g["b"], jnp.ones_like(X))


def test_select_freezes_all_but_trainable():
  params = {"shared": PARAMS, "head": PARAMS}
  g = jax.grad(lambda p: _f(grad.select(p, ["head"])["shared"], X)
               + _f(grad.select(p, ["head"])["head"], X))(params)
  assert all(np.all(np.asarray(l) == 0) for l in jax.tree_util.tree_leaves(g["shared"]))
  assert any(np.any(np.asarray(l) != 0) for l in jax.tree_util.tree_leaves(g["head"]))
  with pytest.raises(KeyError, match="nope"):
    grad.select(params, ["nope"])
