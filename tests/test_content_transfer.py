"""Content transfer (Press et al.): networks, the frozen discriminator and codes, bad settings, the
glasses source and its evaluator against oracle and copy maps.

The ``:test`` variant of configs/content_transfer_faces.py trains on 8 devices in tests/test_engine.py.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import data as datalib
from disen_jax import evaluation, methods
from disen_jax.data import synthfaces
from disen_jax.errors import ConfigError
from disen_jax.evaluation import faces_glasses
from disen_jax.methods import content_transfer as ct
from tests.conftest import load_config


@pytest.fixture(scope="module")
def setup():
  """``(config, batch, state)`` of the :test config at 16 px (2x2 codes), jitted once."""
  config = load_config("content_transfer_faces", "test")
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  batch = {"a": jax.random.uniform(ka, (4, 16, 16, 3), minval=-1, maxval=1),
           "b": jax.random.uniform(kb, (4, 16, 16, 3), minval=-1, maxval=1)}
  state = jax.jit(functools.partial(ct.init, config=config))(jax.random.PRNGKey(1), batch=batch)
  return config, batch, state


def test_widths_are_the_official_networks():
  w = ct.widths(load_config("content_transfer_faces", None))
  assert w["E1"] == (32, 64, 128, 256, 487, 487)
  assert w["E2"] == (32, 64, 128, 128, 128, 25)
  assert w["G"] == (512, 256, 128, 64, 32, 3)


def test_shapes_and_maps(setup):
  config, batch, state = setup
  maps = methods.maps(ct, state, config)
  common_code, separate = maps["encode_a"](batch["a"])
  chex.assert_shape(common_code, (4, 2, 2, 12))  # code_channels 16 - sep 4
  chex.assert_shape(separate, (4, 2, 2, 4))
  out = maps["translate_a2b"](batch["a"], batch["b"][:1])  # one reference for all
  chex.assert_shape(out, (4, 16, 16, 3))
  chex.assert_tree_all_finite(out)
  # A images decode with a zero separate code, whatever the separate code given.
  np.testing.assert_array_equal(maps["decode_a"](common_code, separate), maps["translate_b2a"](batch["a"]))
  with pytest.raises(ValueError, match="reference"):
    maps["translate_a2b"](batch["a"])


def test_confusion_loss_labels():
  zero = jnp.zeros(3)
  assert ct.confusion_loss(logits_a=zero, logits_b=zero, encoder_side=True) == pytest.approx(2 * np.log(2))
  big = jnp.full(3, 30.0)
  # The encoder wants both domains' codes called b; the discriminator a's called a.
  assert ct.confusion_loss(logits_a=big, logits_b=big, encoder_side=True) < 1e-6
  assert ct.confusion_loss(logits_a=-big, logits_b=big, encoder_side=False) < 1e-6
  assert ct.confusion_loss(logits_a=big, logits_b=big, encoder_side=False) > 10


def test_confusion_reaches_only_e1_and_never_the_discriminator(setup):
  config, batch, state = setup
  ae = {n: state.params[n] for n in ct.AUTOENCODER}
  on, off = config.copy_and_resolve_references(), config.copy_and_resolve_references()
  on.loss.confusion, off.loss.confusion = 1.0, 0.0

  def confusion_only(ae, d):  # the loss with the term minus the loss without it
    return (ct.autoencoder_loss(ae, d, batch, config=on)[0]
            - ct.autoencoder_loss(ae, d, batch, config=off)[0])

  def d_loss(d, codes):
    return ct.discriminator_loss(d, codes, config=config)[0]

  codes = (jnp.zeros((4, 2, 2, 12)), jnp.ones((4, 2, 2, 12)))
  grads = jax.jit(lambda: (jax.grad(confusion_only, argnums=(0, 1))(ae, state.params["D"]),
                           jax.grad(d_loss, argnums=(0, 1))(state.params["D"], codes)))
  (g_ae, g_d), (g_d2, g_codes) = grads()
  zero = lambda t: all(not np.any(x) for x in jax.tree_util.tree_leaves(t))
  assert zero(g_d)                                  # D is frozen in the auto-encoder's loss
  assert not zero(g_ae["E1"])                       # the confusion term trains E1 ...
  tiny = 1e-5 * max(np.abs(x).max() for x in jax.tree_util.tree_leaves(g_ae["E1"]))
  small = lambda t: all(np.abs(x).max() <= tiny for x in jax.tree_util.tree_leaves(t))
  assert small(g_ae["E2"]) and small(g_ae["G"])     # ... and nothing else (to float rounding)
  assert zero(g_codes) and not zero(g_d2)           # D's loss leaves the codes (so E1) alone


@pytest.mark.parametrize("field,value,match", [
    ("sep", 16, "config.model.sep=16"), ("sep", 0, "config.model.sep=0"),
    ("num_down", 4, "config.model.num_down=4"),
])
def test_bad_settings_are_named(field, value, match):
  config = load_config("content_transfer_faces", "test")
  config.model[field] = value
  with pytest.raises(ConfigError, match=match):
    methods.spec(ct, config)


def test_glasses_source_is_exact():
  config = load_config("content_transfer_faces", "test")
  ds = datalib.build(config.data, "test")
  assert ds.sizes() == {"a": 16, "b": 16} and not ds.paired
  assert (ds.extras["a/glasses"] == 0).all() and (ds.extras["b/glasses"] == 1).all()
  for d in "ab":
    f = faces_glasses.factors(ds, d)
    np.testing.assert_array_equal(synthfaces.render(f, "c", 16), ds.domains[d])
  assert not np.array_equal(ds.extras["a/smile"], ds.extras["b/smile"])  # unpaired streams
  config.data.render = "x"
  with pytest.raises(ValueError, match="config.data.render='x'"):
    datalib.build(config.data, "test")


def test_celeba_variant_reads_tfds_celeb_a_split_by_eyeglasses():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = load_config("content_transfer_faces", "celeba")
  config.data.resolution, config.model.num_down = 16, 3
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    test_ds = datalib.build(config.data, "test")
  assert set(test_ds.domains) == {"a", "b"} and config.data.attribute == "Eyeglasses"
  evaluation.check(config, methods.spec(ct, config), methods.offered_maps(ct, config, ("a", "b")), test_ds)


def test_evaluator_against_oracle_and_copy_maps(tmp_path):
  config = load_config("content_transfer_faces", "test")
  config.eval.faces_glasses.update(dict(classifier_steps=200, regressor_steps=10, num_probe=400,
                                        cache_dir=str(tmp_path)))
  ds = datalib.build(config.data, "test")
  exact = {}  # test image bytes -> its factors
  for d in "ab":
    f = faces_glasses.factors(ds, d)
    for i, img in enumerate(ds.domains[d]):
      exact[img.tobytes()] = {k: v[i:i + 1] for k, v in f.items()}

  def oracle(glasses):
    def f(x, reference=None):
      del reference
      rows = [faces_glasses.with_glasses(exact[np.asarray(img).tobytes()], glasses) for img in x]
      return np.concatenate([synthfaces.render(r, "c", 16) for r in rows])
    return f

  copy = lambda x, reference=None: np.asarray(x)
  add = faces_glasses.evaluate({"translate_a2b": oracle(1), "translate_b2a": copy}, ds, config=config)
  assert set(add) == {f"{m}{s}" for m in ("transfer", "removal") for s in ("_psnr", "_ssim", "_psnr_copy", "_ssim_copy")} | {
      "removal_p_glasses", "transfer_p_glasses", "glasses_accuracy", "identity_r2_transfer",
      "identity_r2_removal", "identity_r2_renders"}
  assert np.isinf(add["transfer_psnr"]) and add["transfer_ssim"] == pytest.approx(1.0)
  assert add["removal_psnr"] == add["removal_psnr_copy"] < 30
  assert add["glasses_accuracy"] > 0.9 and add["transfer_p_glasses"] > 0.9 and add["removal_p_glasses"] > 0.9
  remove = faces_glasses.evaluate({"translate_a2b": copy, "translate_b2a": oracle(0)}, ds, config=config)
  assert remove["removal_p_glasses"] < 0.1 and remove["transfer_p_glasses"] < 0.1
