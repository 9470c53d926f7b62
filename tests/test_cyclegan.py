"""CycleGAN: shapes of its networks and maps, a jitted step that trains every network, the
identity term, and maps that ignore a reference."""
import functools

import chex
import jax
import numpy as np
import pytest

from disen_jax import methods
from disen_jax.methods import cyclegan
from tests.conftest import load_config


@pytest.fixture(scope="module")
def setup():
  config = load_config("cyclegan_faces", "test")
  size = config.data.resolution
  v, c = jax.random.uniform(jax.random.PRNGKey(1), (2, 2, size, size, 3), minval=-1, maxval=1)
  batch = {"v": v, "c": c}
  state = jax.jit(functools.partial(cyclegan.init, config=config))(jax.random.PRNGKey(0), batch=batch)
  return config, batch, state


def test_networks_and_maps_shapes(setup):
  config, batch, state = setup
  nets = cyclegan.networks(config)
  for name, x in (("G", batch["v"]), ("F", batch["c"])):
    chex.assert_equal_shape([nets[name].apply({"params": state.params[name]}, x), x])
  patches = config.data.resolution // 2 ** config.model.disc_layers - 2  # 4x4 convs, padding 1
  for name in cyclegan.ADVERSARIES:
    logits = nets[name].apply({"params": state.params[name], **state.stats[name]}, batch["v"])
    chex.assert_shape(logits, (2, patches, patches, 1))
  maps = methods.maps(cyclegan, state, config)
  chex.assert_equal_shape([maps["translate_v2c"](batch["v"]), maps["translate_c2v"](batch["c"]), batch["v"]])
  np.testing.assert_array_equal(maps["translate_c2v"](batch["c"], batch["v"]), maps["translate_c2v"](batch["c"]))


def test_a_step_trains_every_network_and_fills_the_history(setup):
  config, batch, state = setup
  new, metrics = jax.jit(functools.partial(cyclegan.train_step, config=config))(state, batch)
  chex.assert_tree_all_finite((new.params, metrics))
  assert int(new.step) == 1
  for name in cyclegan.GENERATORS + cyclegan.ADVERSARIES:
    before, after = jax.tree_util.tree_leaves(state.params[name]), jax.tree_util.tree_leaves(new.params[name])
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), name
  assert int(new.history["v"]["count"]) == 2 and int(new.history["c"]["count"]) == 2


def test_the_identity_term_is_off_at_weight_zero(setup):
  config, batch, state = setup
  gen = {n: state.params[n] for n in cyclegan.GENERATORS}
  off = config.copy_and_resolve_references()
  off.loss.identity = 0.0
  _, on_aux = cyclegan.generator_loss(gen, state, batch, config=config)
  _, off_aux = cyclegan.generator_loss(gen, state, batch, config=off)
  assert float(on_aux["metrics"]["identity"]) > 0 and float(off_aux["metrics"]["identity"]) == 0
