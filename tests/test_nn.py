import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import history
from disen_jax.nn import MLP, Down, PatchGAN, ResnetTranslator, Up
from disen_jax.nn.layers import SPECTRAL

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("size,blocks", [(32, 2), (64, 6)])
def test_translator_shapes(size, blocks):
  x = jnp.zeros((2, size, size, 3))
  net = ResnetTranslator(out_channels=1, features=8, num_blocks=blocks)
  y = net.apply(net.init(KEY, x), x)
  chex.assert_shape(y, (2, size, size, 1))


def test_r_stream_emits_three_scales_and_entangler_takes_them():
  x = jnp.ones((2, 32, 32, 3))
  r_net = ResnetTranslator(out_channels=3, features=8, emit_after=(0, 2, 4))
  feats = r_net.apply(r_net.init(KEY, x), x)
  assert len(feats) == 3
  for f in feats:
    chex.assert_shape(f, (2, 8, 8, 32))
  # The R stream has exactly 4 residual blocks and no upsampling.
  params = r_net.init(KEY, x)["params"]
  assert sum(k.startswith("ResBlock") for k in params) == 4
  assert not any(k.startswith("ConvTranspose") for k in params)
  e_net = ResnetTranslator(out_channels=3, features=8, num_blocks=6, inject_after=(0, 2, 4))
  y = e_net.apply(e_net.init(KEY, x, feats), x, feats)
  chex.assert_shape(y, (2, 32, 32, 3))
  with pytest.raises(ValueError, match="side inputs"):
    e_net.apply(e_net.init(KEY, x, feats), x, feats[:2])


@pytest.mark.parametrize("size,out", [(256, 30), (64, 6)])
def test_patchgan_70_shapes_and_spectral_stats(size, out):
  x = jnp.zeros((1, size, size, 3))
  d = PatchGAN(features=8)
  variables = d.init(KEY, x)
  assert SPECTRAL in variables
  chex.assert_shape(d.apply(variables, x), (1, out, out, 1))
  y, new = d.apply(variables, x + 1, update_stats=True, mutable=[SPECTRAL])
  chex.assert_tree_all_finite((y, new))
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), variables[SPECTRAL], new[SPECTRAL])
  assert any(jax.tree_util.tree_leaves(changed))


def test_mlp_shape():
  m = MLP((32, 5))
  x = jnp.zeros((7, 3))
  chex.assert_shape(m.apply(m.init(KEY, x), x), (7, 5))


def test_history_fill_then_swap_rule():
  pool = history.init(4, (2,))
  batch = jnp.arange(6.0).reshape(3, 2)
  pool, out = history.query(pool, batch, jax.random.PRNGKey(0))
  chex.assert_trees_all_equal(out, batch)  # not full yet: returns its input
  assert int(pool["count"]) == 3
  pool, out = history.query(pool, batch + 100, jax.random.PRNGKey(1))
  assert int(pool["count"]) == 4
  # Every returned example is either the new one or one that was stored.
  stored = jnp.concatenate([batch, batch + 100])
  for row in out:
    assert bool(jnp.any(jnp.all(stored == row, axis=1)))
  # Over many queries about half the returned examples come from the buffer.
  from_pool = 0
  for i in range(50):
    new = jnp.full((4, 2), 1000.0 + i)
    pool, out = history.query(pool, new, jax.random.PRNGKey(10 + i))
    from_pool += int(jnp.sum(jnp.any(out != new, axis=1)))
  assert 60 < from_pool < 140  # ~100 of 200 expected
  chex.assert_tree_all_finite(pool)


def test_history_disabled_passes_through():
  pool = history.init(0, (2,))
  batch = jnp.ones((3, 2))
  _, out = history.query(pool, batch, KEY)
  chex.assert_trees_all_equal(out, batch)


@pytest.mark.parametrize("shape", [(2, 8, 8, 5), (1, 4, 6, 3)])
def test_up_and_down_equal_flax_transposed_conv_and_conv(shape):
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  for impl in ("lax", "cpu"):
    up = Up(7, impl)
    params = up.init(jax.random.PRNGKey(2), x)
    ref = nn.ConvTranspose(7, (4, 4), strides=(2, 2), padding="SAME").apply(params, x)
    np.testing.assert_allclose(up.apply(params, x), ref, atol=1e-5)
    down = Down(7, impl)
    params = down.init(jax.random.PRNGKey(3), x)
    ref = nn.Conv(7, (4, 4), strides=(2, 2), padding="SAME").apply(params, x)
    np.testing.assert_allclose(down.apply(params, x), ref, atol=1e-5)
