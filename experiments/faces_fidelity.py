"""Does uncooperative training keep the expression? Uncooperative vs cooperative vs CycleGAN on
the procedural faces benchmark, with the same data, networks' budget and steps, several seeds.

  python experiments/faces_fidelity.py --out=experiments/results/faces_fidelity

Each run goes through the library's engine (``train.train_and_evaluate``) in its own workdir
under ``--runs`` (checkpoints, samples; not committed), so an interrupted comparison resumes
where it stopped when rerun. Writes ``results.json`` ({method: {seed: {metric: value}}}),
``results.md`` (mean +- std per metric) and, for the first seed, each method's final
mix-and-match table and translation grid.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from configs import cyclegan_faces, uncoop_faces  # pylint: disable=g-import-not-at-top
from disen_jax import train

_OUT = flags.DEFINE_string("out", "experiments/results/faces_fidelity", "Results directory.")
_RUNS = flags.DEFINE_string("runs", "/tmp/faces_fidelity_runs", "Workdirs of the runs.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (network init and batch order).")
_VARIANT = flags.DEFINE_string("variant", "cpu", "Config variant of both configs.")
_STEPS = flags.DEFINE_integer("steps", None, "Override num_steps (same for every method).")
_METHODS = flags.DEFINE_list("methods", ["uncooperative", "cooperative", "cyclegan"], "Methods.")

METRICS = ("expression_r2", "c_fidelity_psnr", "c_fidelity_ssim", "v_fidelity_psnr", "v_fidelity_ssim",
           "residual_r2", "expression_r2_renders")


def make_config(method: str, seed: int):
  if method == "cyclegan":
    config = cyclegan_faces.get_config(_VARIANT.value)
  else:
    config = uncoop_faces.get_config(_VARIANT.value + (",cooperative" if method == "cooperative" else ""))
  config.seed = seed
  if _STEPS.value:
    config.num_steps = _STEPS.value
  config.eval_every = config.num_steps  # evaluate once, at the end
  return config


def summarize(results: dict) -> list[str]:
  lines = ["| method | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
  for method, by_seed in results.items():
    cells = []
    for m in METRICS:
      vals = [r[m] for r in by_seed.values() if m in r]
      cells.append(f"{np.mean(vals):.3f} +- {np.std(vals):.3f}" if vals else "n/a")
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return lines


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  seeds = [int(s) for s in _SEEDS.value]
  out, t0 = _OUT.value, time.time()
  os.makedirs(out, exist_ok=True)
  os.makedirs(_RUNS.value, exist_ok=True)
  results, seconds = {}, {}
  for method in _METHODS.value:
    for seed in seeds:
      workdir = os.path.join(_RUNS.value, f"{method}_seed{seed}")
      config = make_config(method, seed)
      t = time.time()
      _, final = train.train_and_evaluate(config, workdir)
      seconds[f"{method}/{seed}"] = time.time() - t
      results.setdefault(method, {})[str(seed)] = final
      print(f"{method} seed {seed}: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(final.items())),
            flush=True)
      if seed == seeds[0]:
        for kind in ("mix_and_match", "translations"):
          pngs = sorted(glob.glob(os.path.join(workdir, "samples", f"{kind}_*.png")))
          if pngs:
            shutil.copy(pngs[-1], os.path.join(out, f"{method}_{kind}.png"))
  total = time.time() - t0
  config = make_config("uncooperative", seeds[0])
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({**results, "seconds": {"total": total, **seconds}}, f, indent=2)
  lines = [
      "# Faces benchmark: uncooperative vs cooperative vs CycleGAN", "",
      f"`configs/uncoop_faces.py:{_VARIANT.value}` / `configs/cyclegan_faces.py:{_VARIANT.value}`: "
      f"{config.data.resolution} px, batch {config.batch_size}, {config.num_steps} steps, "
      f"seeds {seeds}; test split of {config.data.num_test} faces. Mean +- std over seeds. "
      f"Wall time {total / 60:.0f} min on this machine.", "",
      *summarize(results), "",
      "CycleGAN has no residual: its V-fidelity is F(c) against the photo with another image's "
      "lighting and background, which it cannot take, and it has no residual_r2.",
      "expression_r2_renders is the expression regressor's R^2 on the exact renders (its ceiling).",
      "The paper (Harley et al.) judged its faces experiment by eye only; there is no paper number."]
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
