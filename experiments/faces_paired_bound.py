"""How fast can the faces ``:cpu`` disentangler learn v -> c *with pairs*? A ceiling for issue 20.

  python experiments/faces_paired_bound.py --out=experiments/results/faces_paired_bound

Trains the C stream of ``configs/uncoop_faces.py:cpu`` (the same ResNet translator, widths and
resolution) on *paired* (photo, exact render) examples with L1, batch 4, at several learning
rates, and scores it every ``--eval_every`` steps with the faces evaluator's own measures
(``c_fidelity_psnr`` and ``expression_r2`` on the test split, with the cached expression regressor).
No unpaired method can beat this curve with the same network, so it tells how many steps the
main job's aims (``expression_r2 >= 0.7``, ``c_fidelity_psnr >= 22``) need at the least.
Writes ``results.json`` ({lr: [{step, c_fidelity_psnr, expression_r2, seconds}]}) and ``results.md``.
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from configs import uncoop_faces  # pylint: disable=g-import-not-at-top
from disen_jax import data as datalib
from disen_jax.data import synthfaces
from disen_jax.evaluation import faces, metrics
from disen_jax.methods import uncoop

_OUT = flags.DEFINE_string("out", "experiments/results/faces_paired_bound", "Results directory.")
_LRS = flags.DEFINE_list("lrs", ["2e-4", "1e-3"], "Learning rates (Adam, b1 0.5 as the config).")
_STEPS = flags.DEFINE_integer("steps", 2000, "Steps per learning rate.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 500, "Steps between scores.")
_CACHE = flags.DEFINE_string("cache_dir", "/tmp/faces_paired_bound_cache", "Expression regressor cache.")


def main(_):
  config = uncoop_faces.get_config("cpu")
  config.eval.faces.cache_dir = _CACHE.value
  train, test = (datalib.build(config.data, split) for split in ("train", "test"))
  res = config.data.resolution
  fv = faces.factors(train, "v")
  v_train, c_train = train.domains["v"], synthfaces.render(fv, "c", res)  # pairs
  v_test, ft = test.domains["v"], faces.factors(test, "v")
  c_test, expr = synthfaces.render(ft, "c", res), synthfaces.expression_vector(ft)
  regressor = faces.expression_regressor(config, None)
  net = uncoop.networks(config)["D"].c_stream
  apply = jax.jit(lambda p, x: net.apply({"params": p}, x))
  results = {}
  for lr in _LRS.value:
    params = net.init(jax.random.PRNGKey(config.seed), v_train[:1])["params"]
    opt = optax.adam(float(lr), b1=config.optim.b1, b2=config.optim.b2)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, v, c):
      loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.abs(net.apply({"params": p}, v) - c)))(params)
      updates, opt_state = opt.update(grads, opt_state)  # pylint: disable=cell-var-from-loop
      return optax.apply_updates(params, updates), opt_state, loss

    rng, start, curve = np.random.default_rng(config.seed), time.time(), []
    for i in range(1, _STEPS.value + 1):
      idx = rng.integers(0, len(v_train), config.batch_size)
      params, opt_state, _ = step(params, opt_state, v_train[idx], c_train[idx])
      if i % _EVAL_EVERY.value == 0:
        pred = faces.batched(lambda x: apply(params, x), v_test)  # pylint: disable=cell-var-from-loop
        curve.append({"step": i, "c_fidelity_psnr": metrics.psnr(pred, c_test),
                      "expression_r2": metrics.regressor_r2(*regressor, pred, expr),
                      "seconds": time.time() - start})
        print(f"lr {lr} step {i}: {curve[-1]}", flush=True)
    results[lr] = curve

  os.makedirs(_OUT.value, exist_ok=True)
  with open(os.path.join(_OUT.value, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  steps = [p["step"] for p in next(iter(results.values()))]
  lines = ["# Paired ceiling of the faces `:cpu` disentangler (issue 20)", "",
           "The C stream of `configs/uncoop_faces.py:cpu` trained on *paired* (photo, exact render) "
           f"examples with L1, batch {config.batch_size}, {res} px; scored on the {len(v_test)} test faces. "
           "Cells: expression_r2 / c_fidelity_psnr (dB). Aims of the unpaired main job: 0.7 / 22.", "",
           "| lr | " + " | ".join(f"{s} steps" for s in steps) + " |",
           "|---|" + "---|" * len(steps)]
  for lr, curve in results.items():
    lines.append(f"| {lr} | " + " | ".join(f"{p['expression_r2']:.2f} / {p['c_fidelity_psnr']:.1f}" for p in curve) + " |")
  lines += ["", f"Command: `python experiments/faces_paired_bound.py --lrs={','.join(_LRS.value)} "
            f"--steps={_STEPS.value} --eval_every={_EVAL_EVERY.value}`"]
  with open(os.path.join(_OUT.value, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
