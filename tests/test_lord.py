"""LORD (methods.lord, nn.lord, nn.vgg) and the class/content evaluator."""
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import checkpoint as ckptlib
from disen_jax import losses, train
from disen_jax.errors import ConfigError, DataError
from disen_jax.evaluation import class_content
from disen_jax.methods import lord
from disen_jax.nn import vgg
from disen_jax.nn.lord import AdaINGenerator, ClassModulation, ConvEncoder, adain
from tests.conftest import SHARED_DATA, load_config

CARS3D = os.path.join(SHARED_DATA, "cars3d", "cars3d_64.npz")
needs_cars3d = pytest.mark.skipif(not os.path.isfile(CARS3D), reason="shared Cars3D is absent")


def _config(**loss):
  c = load_config("lord_cars3d", "test")
  c.loss.update(loss)
  return c


def _params_and_batch(config, n=4):
  x = jax.random.uniform(jax.random.PRNGKey(1), (n, 16, 16, 3), minval=-1, maxval=1)
  batch = {"x": x, "x/index": jnp.arange(n, dtype=jnp.int32), "x/label": jnp.array([0, 1, 0, 1][:n])}
  info = lord.methods.DataInfo({"x": 10}, {"x": 2})
  return jax.jit(lambda b: lord.init(jax.random.PRNGKey(0), config, b, info).params)(batch), batch


def test_network_shapes():
  x, code, content = jnp.zeros((2, 32, 32, 3)), jnp.ones((2, 6)), jnp.ones((2, 9))
  enc = ConvEncoder(7, features=(4, 8, 8), dense=(16,))
  mod = ClassModulation(adain_layers=3, adain_dim=5)
  gen = AdaINGenerator(32, 3, adain_layers=3, adain_dim=5, out_features=4)

  @jax.jit
  def run():  # one compiled program for the three networks
    key = jax.random.PRNGKey(0)
    ada = mod.apply(mod.init(key, code), code)
    return enc.apply(enc.init(key, x), x), ada, gen.apply(gen.init(key, content, ada), content, ada)

  codes, ada, out = run()
  chex.assert_shape(codes, (2, 7))
  chex.assert_shape(ada, (2, 3, 5, 2))
  chex.assert_shape(out, (2, 32, 32, 3))
  assert float(jnp.max(jnp.abs(out))) <= 1.0


def test_adain_sets_each_channels_mean_and_std():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3)) * 5 + 2
  scale, offset = jnp.array([[1.0, 2.0, 3.0]] * 2), jnp.array([[0.0, -1.0, 4.0]] * 2)
  y = jax.jit(adain)(x, scale, offset)
  np.testing.assert_allclose(jnp.mean(y, (1, 2)), offset, atol=1e-5)
  np.testing.assert_allclose(jnp.std(y, (1, 2)), scale, rtol=1e-4)


def test_noise_only_at_train_time_and_decay_on_the_row():
  config = _config()
  row = jnp.ones((512, 8)) * 0.5
  code, penalty = lord.regularize_content(row, None, config=config, train=False)
  np.testing.assert_array_equal(code, row)
  code, penalty = lord.regularize_content(row, jax.random.PRNGKey(0), config=config, train=True)
  assert abs(float(jnp.std(code - row)) - config.model.content_std) < 0.05
  np.testing.assert_allclose(penalty, config.loss.content_decay * 8 * 0.25, rtol=1e-6)  # pre-noise (TF)
  config.loss.decay_on_noisy = True  # the PyTorch port: the noisy code
  _, noisy_penalty = lord.regularize_content(row, jax.random.PRNGKey(0), config=config, train=True)
  np.testing.assert_allclose(noisy_penalty, config.loss.content_decay * jnp.mean(jnp.sum(code ** 2, -1)),
                             rtol=1e-5)


def test_the_penalty_touches_content_rows_only():
  config = _config()
  params, batch = _params_and_batch(config)
  grads = jax.jit(jax.grad(lambda p: lord.latent_loss(p, batch, jax.random.PRNGKey(0), config=config)[1]
                           ["content_penalty"]))(params)
  assert float(jnp.max(jnp.abs(grads["class_table"]))) == 0.0
  assert float(jnp.max(jnp.abs(grads["generator"]["Dense_0"]["kernel"]))) == 0.0
  content = grads["content_table"]
  assert float(jnp.max(jnp.abs(content[:4]))) > 0 and float(jnp.max(jnp.abs(content[4:]))) == 0.0


def test_ms_ssim_and_the_perceptual_loss_with_random_weights(tmp_path):
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 3), minval=-1, maxval=1)
  y = jnp.clip(x + 0.3 * jax.random.normal(jax.random.PRNGKey(1), x.shape), -1, 1)
  assert float(losses.ms_ssim(pred=x, target=x)) == pytest.approx(1.0, abs=1e-5)
  assert float(losses.l1_ms_ssim(pred=x, target=x)) == pytest.approx(0.0, abs=1e-5)
  assert float(losses.l1_ms_ssim(pred=y, target=x)) > 0.1
  rng = np.random.default_rng(0)
  path = str(tmp_path / "vgg.npz")
  np.savez(path, **{"block1_conv1/kernel": rng.normal(0, 0.1, (3, 3, 3, 64)), "block1_conv1/bias": np.zeros(64),
                    "block1_conv2/kernel": rng.normal(0, 0.1, (3, 3, 64, 64)), "block1_conv2/bias": np.zeros(64)})
  config = _config(recon="perceptual", perceptual_weights=path, perceptual_layers=("block1_conv2",))
  lord.check_config(config)
  same = lord.reconstruction_loss(pred=x, target=x, config=config)
  assert float(same) == 0.0 and float(lord.reconstruction_loss(pred=y, target=x, config=config)) > 0
  weights = vgg.load_weights(path, ("block1_conv2",))
  feats = vgg.vgg_features(weights, x, ("block1_conv2",))[0]
  chex.assert_shape(feats, (2, 16, 16, 64))
  with pytest.raises(ConfigError, match=r"config.loss.perceptual_weights=.*lacks 'block2_conv1/kernel'"):
    lord.check_config(_config(recon="perceptual", perceptual_weights=path, perceptual_layers=("block2_conv2",)))
  with pytest.raises(ConfigError, match=r"config.loss.perceptual_weights='/no/such.npz': no such file"):
    lord.check_config(_config(recon="perceptual", perceptual_weights="/no/such.npz"))


def test_probes_learn_a_code_that_encodes_the_label_and_not_a_random_one():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(8), 40)
  contents = np.tile(np.arange(8), 40)  # as many labels as classes: one compiled probe
  class_codes = np.eye(8)[labels] + 0.1 * rng.normal(size=(320, 8))
  random_codes = rng.normal(size=(320, 8))
  out = class_content.leakage_probes(class_codes, random_codes, labels, contents, steps=150)
  assert out["probe_class_from_class"] > 0.95
  assert out["probe_class_from_content"] < out["chance_class"] + 0.1
  assert out["probe_content_from_class"] < out["chance_content"] + 0.1
  assert out["probe_content_from_content"] < out["chance_content"] + 0.1
  assert out["chance_class"] == pytest.approx(1 / 8, abs=0.05)


def test_transfer_error_is_zero_for_the_exact_transfer_and_names_the_copy():
  rng = np.random.default_rng(0)
  labels, contents = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
  images = rng.uniform(-1, 1, (12, 16, 16, 3)).astype(np.float32)
  lookup = {(l, c): k for k, (l, c) in enumerate(zip(labels, contents))}
  key = lambda img: int(np.argmin(np.abs(images - img).sum((1, 2, 3))))
  exact = lambda a, b: np.stack([images[lookup[labels[key(u)], contents[key(v)]]] for u, v in zip(a, b)])
  out = class_content.transfer_error(exact, images, labels, contents, num_pairs=20)
  assert out["transfer_l1"] == 0.0 and out["transfer_ssim"] == pytest.approx(1.0)
  assert out["copy_l1"] > 0.3
  i, j, target = class_content.transfer_pairs(labels, contents, 20)
  assert np.all(labels[i] != labels[j]) and np.all(labels[target] == labels[i])
  assert np.all(contents[target] == contents[j])
  grid = class_content.transfer_grid(exact, images[:2], images[4:7])
  chex.assert_shape(grid, (3, 4, 16, 16, 3))


@needs_cars3d
def test_stage_2_keeps_the_tables_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
  """One uninterrupted run checkpointing every step; a copy of it with its last checkpoint
  removed resumes inside phase 2 (step 3) and must end with the same parameters."""
  config = load_config("lord_cars3d", "test")
  config.evals = ()
  config.checkpoint_every = 1
  full, _ = train.train_and_evaluate(config, str(tmp_path / "full"))
  shutil.copytree(tmp_path / "full", tmp_path / "split")
  shutil.rmtree(tmp_path / "split" / "checkpoints" / "4")
  resumed, _ = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert int(resumed.step) == 4
  for a, b in zip(jax.tree_util.tree_leaves(jax.device_get(full.params)),
                  jax.tree_util.tree_leaves(jax.device_get(resumed.params))):
    np.testing.assert_array_equal(a, b)
  ckpt = ckptlib.Checkpointer(str(tmp_path / "full"))
  end_of_latent, end = ckpt.restore_arrays(2)["params"], ckpt.restore_arrays(4)["params"]
  ckpt.close()
  for name in lord.TABLES:  # phase 2 leaves the tables as phase 1 left them
    np.testing.assert_array_equal(end_of_latent[name], end[name])
  for net in ("generator", "class_encoder", "content_encoder"):  # and trains these
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(end_of_latent[net]),
                                                        jax.tree_util.tree_leaves(end[net])))


@needs_cars3d
def test_the_end_of_every_phase_outlives_the_newest_three_checkpoints(tmp_path):
  config = load_config("lord_cars3d", "test")
  config.evals = ()
  config.checkpoint_every = 1
  config.phases.latent, config.phases.amortize, config.num_steps = 1, 4, 5
  train.train_and_evaluate(config, str(tmp_path))
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  assert sorted(ckpt.manager.all_steps()) == [1, 3, 4, 5]  # 2 is gone; 1 ends the latent phase
  ckpt.close()


@needs_cars3d
@pytest.mark.parametrize("change,error,match", [
    ({"data.label": "", "evals": ()}, ConfigError, r"needs the class of every example of domain 'x'.*set config.data.label"),
    ({"model.max_table_mb": 0.001}, ConfigError, r"content table of 192 training images x 4 .*takes 0 MB.*"
                                                 r"config.model.max_table_mb=0.001"),
    ({"data.test_cars": 200}, DataError, r"config.data.test_cars=200 must be an int in \[0, 183\)"),
    ({"model.regularizer": "dropout"}, ConfigError, r"config.model.regularizer='dropout'"),
    ({"eval.class_content.content_fields": ()}, ConfigError, r"content_fields is empty"),
])
def test_bad_input_names_the_field(tmp_path, change, error, match):
  config = load_config("lord_cars3d", "test")
  for field, value in change.items():
    node, _, leaf = field.rpartition(".")
    sub = config
    for part in filter(None, node.split(".")):
      sub = sub[part]
    sub[leaf] = value
  with pytest.raises(error, match=match):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")
