"""ost (Benaim & Wolf 2018): shapes, selective backprop's exact zeros, phase II from phase I's
state, the photo_mnist source, the translation-accuracy measure, bad input."""
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import data as datalib
from disen_jax import methods, train
from disen_jax.errors import ConfigError, DataError
from disen_jax.evaluation import translation_accuracy
from disen_jax.methods import ost
from tests.conftest import SHARED_DATA, load_config

MNIST = os.path.join(SHARED_DATA, "mnist")
needs_mnist = pytest.mark.skipif(not os.path.isdir(MNIST), reason="shared MNIST is absent")
R, N = 32, 4


@pytest.fixture(scope="module")
def config():
  c = load_config("ost_mnist", "test")
  c.data.mnist_dir = MNIST
  return c


@pytest.fixture(scope="module")
def states(config):
  """The state after init (phase I) and after entering phase II."""
  rng = np.random.default_rng(0)
  batch = {d: jnp.asarray(rng.uniform(-1, 1, (N, R, R, 3)), jnp.float32) for d in "ab"}
  phases = methods.spec(ost, config).phases
  one = ost.start_phase(ost.init(jax.random.PRNGKey(0), config, batch), phases[0], config=config)
  return one, ost.start_phase(one, phases[1], config=config), batch


def test_shapes(config, states):
  _, two, batch = states
  f = 4 * config.model.features
  maps = methods.maps(ost, two, config)
  code = maps["encode_a"](batch["a"])
  chex.assert_shape(code, (N, R // 8, R // 8, f))
  chex.assert_shape([maps["decode_b"](code), maps["translate_a2b"](batch["a"]),
                     maps["translate_b2a"](batch["b"])], (N, R, R, 3))
  chex.assert_shape(ost.networks(config)["D_b"].apply({"params": two.params["D_b"]}, batch["b"]), (N,))
  chex.assert_tree_all_finite(two.params)


def test_phase_two_starts_from_phase_ones_state(config, states):
  one, two, _ = states
  for name in ost.PHASE_ONE + ("D_b",):  # phase I's networks carried over as they are
    chex.assert_trees_all_equal(one.params[name], two.params[name])
  assert "E_a" not in one.params and "one_shot" not in one.opt_state
  chex.assert_trees_all_equal(two.params["E_a"], one.params["E_b"])  # model.a_init = "b"
  chex.assert_trees_all_equal(two.params["G_a"], one.params["G_b"])
  assert set(two.opt_state) == {"adv", "autoencode", "one_shot"}
  fresh = config.copy_and_resolve_references()
  fresh.model.a_init = "random"
  other = ost.start_phase(one, methods.spec(ost, fresh).phases[1], config=fresh)
  chex.assert_trees_all_equal_shapes(other.params["E_a"], one.params["E_b"])
  assert not np.array_equal(other.params["E_a"]["Conv_0"]["kernel"], one.params["E_b"]["Conv_0"]["kernel"])


def _grads(loss_fn, params, stats, x, config):
  loss = lambda p: loss_fn(p, stats, x, jax.random.PRNGKey(1), config=config)[0]
  return jax.jit(jax.grad(loss))(params)


def _zero(tree):
  return all(np.all(np.asarray(leaf) == 0) for leaf in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("selective", [True, False])
def test_selective_backprop_keeps_the_a_losses_off_the_shared_layers(config, states, selective):
  _, two, batch = states
  c = config.copy_and_resolve_references()
  c.selective = selective
  a_grads = _grads(ost.a_losses, two.params, two.stats, batch["a"], c)
  b_grads = _grads(ost.b_losses, two.params, two.stats, batch["b"], c)
  for name in ost.SHARED:
    assert _zero(a_grads[name]) == selective, name   # exactly zero only with selective backprop
    assert not _zero(b_grads[name]), name            # b always trains them
  for name in ost.A_SIDE:
    assert not _zero(a_grads[name]), name
  assert _zero(b_grads["E_a"]) and _zero(b_grads["G_a"])


def test_augment_flips_and_rotates_each_image_anew(states):
  _, _, batch = states
  x = batch["a"]
  key = jax.random.PRNGKey(3)
  augment = jax.jit(ost.augment, static_argnames=("flip", "rotation"))
  chex.assert_trees_all_equal(augment(key, x, flip=False, rotation=0.0), x)
  flipped = np.asarray(augment(key, x, flip=True, rotation=0.0))
  for img, out in zip(np.asarray(x), flipped):
    assert np.array_equal(out, img) or np.array_equal(out, img[:, ::-1])
  rotated = np.asarray(augment(key, x, flip=False, rotation=7.0))
  chex.assert_shape(rotated, x.shape)
  assert not np.allclose(rotated, x) and np.abs(rotated - np.asarray(x)).mean() < 0.5


def test_phase_two_without_phase_one_is_an_error(config, tmp_path):
  c = config.copy_and_resolve_references()
  c.phases.autoencode = 0
  with pytest.raises(ConfigError, match=r"config.phases.autoencode=0 and config.init_from is empty"):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


@needs_mnist
def test_photo_mnist_domains_are_disjoint_digits_and_num_a_picks_examples(config):
  d = config.data.copy_and_resolve_references()
  d.num_train, d.num_a = 40, 3
  train_ds, test_ds = datalib.build(d, "train"), datalib.build(d, "test")
  assert train_ds.sizes() == {"a": 3, "b": 20} and not train_ds.paired
  assert not set(train_ds.extras["a/digit"]) & set(train_ds.extras["b/digit"])
  for ds in (train_ds, test_ds):
    assert ds.domains["b"].shape[1:] == (R, R, 3) and -1 <= ds.domains["b"].min() <= ds.domains["b"].max() <= 1
  # a is the grey digit; b the same digit blended on a photo crop: |crop - digit|.
  np.testing.assert_array_equal(test_ds.extras["a/label"], test_ds.extras["b/label"])
  other = d.copy_and_resolve_references()
  other.a_seed = 1
  assert not np.array_equal(datalib.build(other, "train").extras["a/digit"], train_ds.extras["a/digit"])
  d.num_a = 21
  with pytest.raises(DataError, match=r"config.data.num_a=21: domain 'a' has only 20 training examples"):
    datalib.build(d, "train")


@needs_mnist
def test_translation_accuracy_of_the_exact_render_is_the_classifiers_accuracy(config, tmp_path):
  """The test split's b images are the exact photo-MNIST renders of its a digits: a map returning
  them scores the classifier's own accuracy; a map returning the wrong digits scores less."""
  c = config.copy_and_resolve_references()
  c.data.num_train, c.data.num_test = 400, 200
  c.eval.translation_accuracy.classifier_steps = 200
  c.eval.translation_accuracy.classifier_width = 8
  test_ds = datalib.build(c.data, "test")
  exact = {np.asarray(a).tobytes(): b for a, b in zip(test_ds.domains["a"], test_ds.domains["b"])}
  render = lambda x, reference=None: np.stack([exact[np.asarray(a).tobytes()] for a in x])
  out = translation_accuracy.evaluate({"translate_a2b": render}, test_ds, config=c, workdir=str(tmp_path))
  assert out["translation_accuracy/a2b"] == out["classifier_accuracy/b"] > 0.25
  assert os.listdir(tmp_path / "eval_cache")  # cached for the next evaluation
  wrong = lambda x, reference=None: np.roll(render(x), 1, axis=0)
  out = translation_accuracy.evaluate({"translate_a2b": wrong}, test_ds, config=c, workdir=str(tmp_path))
  assert out["translation_accuracy/a2b"] < 0.5 * out["classifier_accuracy/b"]
