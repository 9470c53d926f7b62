"""The uncooperative switch: exact zeros of frozen gradients, shapes of D's outputs, a step."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import methods
from disen_jax.errors import ConfigError
from disen_jax.methods import common, uncoop
from tests.conftest import load_config


def _setup(cooperative: bool, kind: str):
  if kind == "mlp":
    config = load_config("uncoop_synthetic", "test")
    batch = {"v": jax.random.normal(jax.random.PRNGKey(1), (8, 2)),
             "c": jax.random.normal(jax.random.PRNGKey(2), (8, 1))}
  else:
    config = load_config("uncoop_faces", "test")
    size = config.data.resolution
    batch = {"v": jax.random.uniform(jax.random.PRNGKey(1), (2, size, size, 3), minval=-1, maxval=1),
             "c": jax.random.uniform(jax.random.PRNGKey(2), (2, size, size, 3), minval=-1, maxval=1)}
  config.unlock()
  config.cooperative = cooperative
  state = uncoop.init(jax.random.PRNGKey(0), config, batch)
  return config, state, batch


def _grads(config, state, batch):
  gen = {n: state.params[n] for n in uncoop.GENERATORS}
  cycle = lambda i: jax.grad(lambda g: uncoop.cycle_losses(g, state, batch, config=config)[i])(gen)
  return cycle(0), cycle(1)


def _all_zero(tree):
  return all(np.all(np.asarray(l) == 0.0) for l in jax.tree_util.tree_leaves(tree))


def _any_nonzero(tree):
  return any(np.any(np.asarray(l) != 0.0) for l in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("kind", ["mlp", "resnet"])
def test_uncooperative_freezes_the_other_network_exactly(kind):
  config, state, batch = _setup(cooperative=False, kind=kind)
  g1, g2 = _grads(config, state, batch)
  assert _all_zero(g1["E"]), "cycle 1 must not train E"
  assert _all_zero(g2["D"]), "cycle 2 must not train D"
  assert _any_nonzero(g1["D"]) and _any_nonzero(g2["E"])


@pytest.mark.parametrize("kind", ["mlp", "resnet"])
def test_cooperative_trains_both_networks_in_both_cycles(kind):
  config, state, batch = _setup(cooperative=True, kind=kind)
  g1, g2 = _grads(config, state, batch)
  for g in (g1, g2):
    assert _any_nonzero(g["D"]) and _any_nonzero(g["E"])


def test_a_cooperative_warm_up_trains_both_networks_until_its_step_then_freezes_them():
  config, state, batch = _setup(cooperative=False, kind="mlp")
  config.cooperative_steps = 3
  for step, frozen in ((0, False), (2, False), (3, True), (10, True)):
    g1, g2 = jax.jit(lambda s: _grads(config, state.replace(step=s), batch))(jnp.int32(step))
    assert _all_zero(g1["E"]) == frozen and _all_zero(g2["D"]) == frozen, step
    assert _any_nonzero(g1["D"]) and _any_nonzero(g2["E"])


def test_disentangler_residual_has_three_scales_and_the_maps_their_shapes():
  config, state, batch = _setup(cooperative=False, kind="resnet")
  maps = methods.maps(uncoop, state, config)
  c, r = maps["encode_v"](batch["v"])
  chex.assert_equal_shape([c, maps["translate_v2c"](batch["v"]), batch["c"]])
  assert len(r) == 3
  quarter = config.data.resolution // 4
  chex.assert_shape(r, (2, quarter, quarter, 4 * config.model.features))
  chex.assert_equal_shape([maps["decode_v"](batch["c"], r), batch["v"]])
  # The reference's residual: one V image for the whole batch, or one per c.
  np.testing.assert_allclose(maps["translate_c2v"](batch["c"], batch["v"]),
                             maps["decode_v"](batch["c"], r), atol=1e-6)
  one = maps["translate_c2v"](batch["c"], batch["v"][:1])
  np.testing.assert_allclose(one[1], maps["decode_v"](batch["c"][1:], [f[:1] for f in r])[0], atol=1e-6)
  with pytest.raises(ConfigError, match="reference"):
    maps["translate_c2v"](batch["c"])


def test_r_grid_pools_the_residual_and_the_entangler_takes_it_back():
  config = load_config("uncoop_faces", "test")
  config.model.r_grid = 2
  v = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3), minval=-1, maxval=1)
  nets = uncoop.networks(config)
  d = nets["D"].init(jax.random.PRNGKey(0), v)
  c, r = nets["D"].apply(d, v)
  chex.assert_shape(r, (2, 2, 2, 4 * config.model.features))
  full = nets["D"].r_stream.apply({"params": d["params"]["r_stream"]}, v)  # 4x4 maps
  np.testing.assert_allclose(r[0][:, 0, 1], full[0][:, :2, 2:].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  e = nets["E"].init(jax.random.PRNGKey(1), c, r)
  chex.assert_equal_shape([nets["E"].apply(e, c, r), v])
  config.model.r_grid = 3
  with pytest.raises(ConfigError, match="r_grid=3 must divide"):
    uncoop.spec(config)


def test_maps_compile_once_per_config_and_compute_with_the_given_state():
  """The evaluations of a run bind the maps to each new state: one compiled program serves all."""
  config, state, batch = _setup(cooperative=False, kind="mlp")
  other = uncoop.init(jax.random.PRNGKey(5), config, batch)
  net = uncoop.networks(config)["D"]

  def build(config):  # a map that fails when traced twice
    del config
    return {"c": chex.assert_max_traces(lambda p, st, v: net.apply({"params": p["D"]}, v)[0], n=1)}

  m1, m2 = common.bind_maps(build, state, config), common.bind_maps(build, other, config)
  for s, m in ((state, m1), (other, m2)):
    np.testing.assert_allclose(m["c"](batch["v"]), net.apply({"params": s.params["D"]}, batch["v"])[0],
                               rtol=1e-6)
  assert not np.allclose(m1["c"](batch["v"]), m2["c"](batch["v"]))


@pytest.mark.parametrize("sequential", [False, True])
def test_train_step_updates_only_what_it_should(sequential):
  config, state, batch = _setup(cooperative=False, kind="mlp")
  config.sequential = sequential
  new, metrics = jax.jit(functools.partial(uncoop.train_step, config=config))(state, batch)
  chex.assert_tree_all_finite((new, metrics))
  assert int(new.step) == 1
  for name in ("D", "E", "A_C", "A_V"):
    assert _any_nonzero(jax.tree_util.tree_map(lambda a, b: a - b, new.params[name], state.params[name]))
  assert int(new.history["v"]["count"]) == min(8, config.history_size)


def test_train_step_vmaps_over_seeds():
  config, _, batch = _setup(cooperative=False, kind="mlp")
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  states = jax.vmap(lambda k: uncoop.init(k, config, batch))(keys)
  new, metrics = jax.vmap(functools.partial(uncoop.train_step, config=config), in_axes=(0, None))(states, batch)
  chex.assert_shape(metrics["l_v"], (3,))
  assert not np.allclose(metrics["l_v"][0], metrics["l_v"][1])
