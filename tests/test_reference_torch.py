"""The PyTorch reference of the step benchmark computes our update: from the same initial
parameters, the same losses over consecutive steps (skipped when torch is not installed)."""
import functools

import jax
import numpy as np
import pytest

from disen_jax import methods
from tests.conftest import load_config

torch = pytest.importorskip("torch")
from experiments.reference_torch import steps  # noqa: E402  pylint: disable=g-import-not-at-top


@pytest.fixture(autouse=True)
def one_torch_thread():
  """Tiny ops on a shared CPU: torch's thread barriers stall (seconds per step) when another
  process holds a core; one thread computes the same numbers without them."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["cyclegan_faces", "uncoop_faces"])
def test_torch_reference_takes_the_same_steps(name):
  config = load_config(name, "test")
  config.model.num_blocks, config.model.disc_layers = 2, 1  # smaller: less to compile
  if "r_emit_after" in config.model:
    config.model.r_emit_after = (0, 1)
  method = methods.get(config.method)
  keys = jax.random.split(jax.random.PRNGKey(1), 2)
  batch = {d: jax.random.uniform(k, (2, 16, 16, 3), minval=-1, maxval=1) for d, k in zip("vc", keys)}
  state = jax.jit(lambda rng, b: method.init(rng, config, b))(jax.random.PRNGKey(0), batch)
  run = steps.build(config, {"v": 3, "c": 3})
  run.load_flax(state)
  torch_batch = {d: torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()) for d, x in batch.items()}
  # Without LLVM's optimizations: this test checks numbers, not speed, and compiles 2x faster.
  step = jax.jit(functools.partial(method.train_step, config=config),
                 compiler_options={"xla_backend_optimization_level": 0})
  for _ in range(2):  # the second step checks the first update (Adam, adversaries, spectral stats)
    state, ours = step(state, batch)
    theirs = run.step(torch_batch)
    assert sorted(ours) == sorted(theirs)
    for k in ours:
      np.testing.assert_allclose(float(theirs[k]), float(ours[k]), rtol=1e-4, atol=1e-6, err_msg=k)


def test_torch_reference_rejects_other_methods():
  config = load_config("uncoop_synthetic", "test")
  with pytest.raises(ValueError, match="config.method='uncoop'"):
    steps.build(config, {"v": 2, "c": 1})
