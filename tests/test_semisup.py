"""semisup (Hinz & Wermter 2018): networks, losses, the labelled-sampling schedule, resume, bad input."""
import os

import chex
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disen_jax import train
from disen_jax.errors import ConfigError, Error
from disen_jax.methods import semisup
from tests.conftest import SHARED_DATA, load_config

needs_mnist = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "mnist")),
                                 reason="shared MNIST is absent")


def _config(**model):
  config = load_config("semisup_mnist", "test")
  config.model.update(model)
  return config


@pytest.mark.parametrize("arch,channels,noise", [("mnist", 1, 16), ("svhn", 3, 128)])
def test_network_shapes(arch, channels, noise):
  """Shapes only (``jax.eval_shape``: nothing compiles); the engine test runs the networks."""
  config = _config(arch=arch, x_channels=channels, noise_dim=noise)
  config.model.width = 1.0  # the paper's widths
  nets = semisup.networks(config)
  x = jax.ShapeDtypeStruct((2, 32, 32, channels), jnp.float32)
  rng = jax.random.PRNGKey(0)
  enc = jax.eval_shape(nets["E"].init, rng, x)
  u, logits, cont = jax.eval_shape(nets["E"].apply, enc, x)
  chex.assert_shape([u, logits, cont], [(2, noise), (2, 10), (2, 2)])
  z = jax.ShapeDtypeStruct((2, noise + 10 + 2), jnp.float32)
  img = jax.eval_shape(nets["G"].apply, jax.eval_shape(nets["G"].init, rng, z), z)
  chex.assert_shape(img, (2, 32, 32, channels))
  d = jax.eval_shape(nets["D"].apply, jax.eval_shape(nets["D"].init, rng, x, z), x, z)
  chex.assert_shape(d, (2,))


def test_mutual_info_on_known_inputs():
  logits = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
  target = jnp.array([[1.0, 0, 0], [0, 1.0, 0]])
  mean = jnp.array([[0.0, 1.0], [0.5, 0.5]])
  value = jnp.array([[1.0, 1.0], [0.5, -0.5]])
  total, cat, cont = semisup.mutual_info_loss(cat_logits=logits, cat_target=target,
                                              cont_mean=mean, cont_target=value)
  np.testing.assert_allclose(cat, -(np.log(0.5) + np.log(0.8)) / 2, rtol=1e-6)
  # Unit-variance Gaussian NLL summed over the 2 variables: squares 1, 0 | 0, 1.
  np.testing.assert_allclose(cont, 0.5 * 1.0 + np.log(2 * np.pi), rtol=1e-6)
  np.testing.assert_allclose(total, cat + cont, rtol=1e-6)


def test_supervised_loss_counts_only_labelled_examples():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [5.0, -5.0, 0.0], [0.3, 0.2, 0.1]])
  labels = jnp.array([0, 2, -1, -1])  # -1: unlabelled (the engine's hidden label)
  mask = jnp.array([True, True, False, False])
  expected = np.mean(optax.softmax_cross_entropy_with_integer_labels(logits[:2], labels[:2]))
  np.testing.assert_allclose(semisup.supervised_loss(logits=logits, labels=labels, mask=mask), expected,
                             rtol=1e-6)
  grads = jax.grad(lambda l: semisup.supervised_loss(logits=l, labels=labels, mask=mask))(logits)
  assert np.all(np.asarray(grads[2:]) == 0.0) and np.all(np.abs(np.asarray(grads[:2])) > 0)
  none = semisup.supervised_loss(logits=logits, labels=labels, mask=jnp.zeros(4, bool))
  assert float(none) == 0.0  # no labelled example: no term (not NaN)


def test_labelled_sampling_schedule():
  ramp, ratio = 1000, 100 / 13000
  p = lambda t: float(semisup.labelled_probability(t, ramp, ratio))
  assert p(0) == 1.0
  np.testing.assert_allclose(p(500), 0.5 + 0.5 * ratio, rtol=1e-6)
  np.testing.assert_allclose([p(1000), p(5000)], [ratio, ratio], rtol=1e-6)
  assert float(semisup.ramp(0, ramp)) == 0.0 and float(semisup.ramp(250, ramp)) == 0.25
  assert float(semisup.ramp(3000, ramp)) == 1.0 and float(semisup.ramp(0, 0)) == 1.0

  n = 4096  # the mix: position i takes the labelled stream's example with probability 1 - t / ramp
  batch = {"x": jnp.zeros((n, 1, 1, 1)), "x/label": jnp.full((n,), -1), "x/labelled": jnp.zeros(n, bool),
           "labelled/x": jnp.ones((n, 1, 1, 1)), "labelled/x/label": jnp.full((n,), 7)}
  batch["x/labelled"] = batch["x/labelled"].at[:8].set(True)  # a few regular examples are labelled
  batch["x/label"] = batch["x/label"].at[:8].set(3)
  for step, expected in ((0, 1.0), (250, 0.75), (1000, 0.0)):
    x, labels, mask = semisup.mix_labelled(batch, jax.random.PRNGKey(step), step, ramp)
    took = np.asarray(x[:, 0, 0, 0]) == 1.0
    np.testing.assert_allclose(took.mean(), expected, atol=0.03)
    np.testing.assert_array_equal(np.asarray(mask), took | np.asarray(batch["x/labelled"]))
    # The mask never admits an unlabelled example: every masked label is a real class.
    assert np.all(np.asarray(labels)[np.asarray(mask)] >= 0)
    assert np.all(np.asarray(labels)[~np.asarray(mask)] == -1)
    np.testing.assert_array_equal(np.asarray(labels)[took], 7)


@needs_mnist
def test_resume_inside_the_ramp_equals_uninterrupted():
  """Two steps inside the ramp (adversarial weight and labelled-sampling probability depend on
  the step) from one state, and the second step again from that state after a serialization
  round trip: nothing outside the state (a Python-side counter, a numpy RNG) decides a step.
  The engine's checkpoint / data-position resume is tested in test_engine on every method."""
  config = _config()  # the :test config as it is: the engine test's step program, compiled once
  assert config.loss.ramp_steps == 2
  training = train.setup_training(config)
  step_fn = training.step_fn(0)
  batches = [training.global_batch(training.batches[t]) for t in range(2)]
  state, metrics = step_fn(training.state, batches[0])
  assert float(metrics["ramp"]) == 0.0
  saved = flax.serialization.to_bytes(jax.device_get(state))
  template = jax.device_get(state)
  full, metrics = step_fn(state, batches[1])  # donates `state`
  assert float(metrics["ramp"]) == 0.5
  resumed = jax.device_put(flax.serialization.from_bytes(template, saved), training.replicated)
  resumed, _ = step_fn(resumed, batches[1])
  leaves = lambda t: jax.tree_util.tree_leaves(jax.device_get(t))
  for a, b in zip(leaves(full), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


@needs_mnist
@pytest.mark.parametrize("change,error,match", [
    ({"data.num_labels": 201}, Error, r"config.data.num_labels=201 is more than the 200 examples"),
    ({"data.num_labels": 25}, Error, r"config.data.num_labels=25 is not divisible by the 10 classes"),
    ({"data.label": "", "data.num_labels": 0, "evals": ()}, ConfigError,
     r"needs the class of every example of domain 'x'.*set config.data.label"),
    ({"model.num_classes": 7}, ConfigError, r"config.model.num_classes=7, but .* has 10 classes"),
    ({"model.arch": "resnet"}, ConfigError, r"config.model.arch='resnet'"),
])
def test_bad_input_is_an_error_naming_the_field_before_compiling(tmp_path, change, error, match):
  config = _config()
  for field, value in change.items():
    node, _, leaf = field.rpartition(".")
    (config[node] if node else config)[leaf] = value
  with pytest.raises(error, match=match):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_the_svhn_variant_names_its_unprepared_tfds_dataset(tmp_path):
  """``:svhn`` is for users with tfds ``svhn_cropped``; without it the run stops with the source
  and the prepare command, before anything is written."""
  config = load_config("semisup_mnist", "svhn")
  config.data.tfds_data_dir = str(tmp_path / "tfds")
  assert (config.model.arch, config.model.noise_dim, config.model.x_channels) == ("svhn", 128, 3)
  with pytest.raises(Error, match=r"tfds dataset 'svhn_cropped' .* is not prepared.*--mode=prepare"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")
