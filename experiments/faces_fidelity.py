"""Does uncooperative training keep the expression? Uncooperative vs cooperative vs CycleGAN on
the procedural faces benchmark, with the same data, networks' budget and steps, several seeds.

  python experiments/faces_fidelity.py --out=experiments/results/faces_fidelity

Each run is the library's own command (``python -m disen_jax.main``) in its own workdir under
``--runs`` (checkpoints, samples; not committed), ``--parallel`` at a time (XLA's CPU convolutions
keep about one core busy per process), so an interrupted comparison resumes where it stopped
when rerun. The expression regressor is trained once, before the runs, and shared. Writes ``results.json`` ({method: {seed: {metric: value}}}, and
``curves``: {method: {seed: {step: {metric: value}}}} with ``--eval_every``), ``results.md`` (mean
+- std per metric, per eval step, and the step where each method's mean peaks), ``curves.png``
and, for the first seed, each method's final mix-and-match table and translation grid.

  python experiments/faces_fidelity.py --steps=8000 --eval_every=1000   # issue 20's part 3
"""
from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from configs import cyclegan_faces, uncoop_faces  # pylint: disable=g-import-not-at-top
from disen_jax import logging as loglib
from disen_jax.evaluation import faces

_OUT = flags.DEFINE_string("out", "experiments/results/faces_fidelity", "Results directory.")
_RUNS = flags.DEFINE_string("runs", "/tmp/faces_fidelity_runs", "Workdirs of the runs.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (network init and batch order).")
_VARIANT = flags.DEFINE_string("variant", "cpu", "Config variant of both configs.")
_STEPS = flags.DEFINE_integer("steps", None, "Override num_steps (same for every method).")
_METHODS = flags.DEFINE_list("methods", ["uncooperative", "cooperative", "cyclegan"], "Methods.")
_PARALLEL = flags.DEFINE_integer("parallel", 2, "Runs at a time.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", None, "Steps between evals (default: only at the "
                                   "end); the curves show when each metric stops improving.")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

METRICS = ("expression_r2", "c_fidelity_psnr", "c_fidelity_ssim", "v_fidelity_psnr", "v_fidelity_ssim",
           "residual_r2", "expression_r2_renders")


def config_arg(method: str) -> str:
  if method == "cyclegan":
    return f"configs/cyclegan_faces.py:{_VARIANT.value}"
  return f"configs/uncoop_faces.py:{_VARIANT.value}" + (",cooperative" if method == "cooperative" else "")


def overrides(seed: int) -> dict:
  steps = _STEPS.value or uncoop_faces.get_config(_VARIANT.value).num_steps
  return {"seed": seed, "num_steps": steps, "eval_every": _EVAL_EVERY.value or steps,
          "eval.faces.cache_dir": os.path.join(os.path.abspath(_RUNS.value), "eval_cache")}


def make_config(method: str, seed: int):
  """The config a run uses (for its description; the run itself goes through the CLI)."""
  arg = config_arg(method).split(":")[1]
  config = (cyclegan_faces if method == "cyclegan" else uncoop_faces).get_config(arg)
  for key, value in overrides(seed).items():
    node = config
    *path, leaf = key.split(".")
    for p in path:
      node = node[p]
    node[leaf] = value
  return config


def run(method: str, seed: int) -> float:
  """Trains (or resumes) one run with the library's command; returns its wall time."""
  workdir = os.path.join(os.path.abspath(_RUNS.value), f"{method}_seed{seed}")
  cmd = [sys.executable, "-m", "disen_jax.main", f"--config={config_arg(method)}", f"--workdir={workdir}",
         *[f"--config.{k}={v}" for k, v in overrides(seed).items()]]
  t = time.time()
  with open(workdir + ".log", "a") as log:
    subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
  with open(os.path.join(workdir, "eval_final.json")) as f:
    final = json.load(f)
  print(f"{method} seed {seed} ({time.time() - t:.0f} s): "
        + ", ".join(f"{k}={v:.3f}" for k, v in sorted(final.items())), flush=True)
  return time.time() - t


def curve(workdir: str) -> dict[str, dict[str, float]]:
  """Every eval of a run, {step: {metric: value}}, METRICS only, in step order."""
  evals = loglib.read_evals(workdir, "expression_r2")
  return {s: {m: e[m] for m in METRICS if m in e} for s, e in sorted(evals.items(), key=lambda kv: int(kv[0]))}


def curve_lines(curves: dict) -> list[str]:
  """Mean expression_r2 / c_fidelity_psnr per eval step, and the step where each mean peaks."""
  lines = []
  steps = sorted({int(s) for by_seed in curves.values() for c in by_seed.values() for s in c})
  for metric in ("expression_r2", "c_fidelity_psnr"):
    lines += [f"**{metric}**, mean +- std over seeds at each eval:", "",
              "| method | " + " | ".join(f"{s:,}" for s in steps) + " | best at |",
              "|---|" + "---|" * (len(steps) + 1)]
    for method, by_seed in curves.items():
      means, cells = {}, []
      for s in steps:
        vals = [c[str(s)][metric] for c in by_seed.values() if str(s) in c]
        if len(vals) == len(by_seed):
          means[s] = np.mean(vals)
          cells.append(f"{means[s]:.2f} +- {np.std(vals):.2f}")
        else:
          cells.append("")
      best = f"{max(means, key=means.get):,}" if means else ""
      lines.append(f"| {method} | " + " | ".join(cells) + f" | {best} |")
    lines.append("")
  return lines


def plot_curves(curves: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for ax, metric in zip(axes, ("expression_r2", "c_fidelity_psnr")):
    for k, (method, by_seed) in enumerate(curves.items()):
      for i, c in enumerate(by_seed.values()):
        ax.plot([int(s) for s in c], [m[metric] for m in c.values()], color=f"C{k}", alpha=0.8,
                label=method if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_title(metric)
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)


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
  faces.expression_regressor(make_config("uncooperative", seeds[0]), None)  # train + cache once
  runs = [(method, seed) for method in _METHODS.value for seed in seeds]
  with concurrent.futures.ThreadPoolExecutor(_PARALLEL.value) as pool:
    seconds = dict(zip([f"{m}/{s}" for m, s in runs], pool.map(lambda ms: run(*ms), runs)))
  results, curves = {}, {}
  for method, seed in runs:
    workdir = os.path.join(_RUNS.value, f"{method}_seed{seed}")
    with open(os.path.join(workdir, "eval_final.json")) as f:
      results.setdefault(method, {})[str(seed)] = json.load(f)
    curves.setdefault(method, {})[str(seed)] = curve(workdir)
    if seed == seeds[0]:
      for kind in ("mix_and_match", "translations"):
        pngs = sorted(glob.glob(os.path.join(workdir, "samples", f"{kind}_*.png")))
        if pngs:
          shutil.copy(pngs[-1], os.path.join(out, f"{method}_{kind}.png"))
  total = time.time() - t0
  config = make_config("uncooperative", seeds[0])
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({**results, "curves": curves, "seconds": {"total": total, **seconds}}, f, indent=2)
  plot_curves(curves, os.path.join(out, "curves.png"))
  lines = [
      "# Faces benchmark: uncooperative vs cooperative vs CycleGAN", "",
      f"`configs/uncoop_faces.py:{_VARIANT.value}` / `configs/cyclegan_faces.py:{_VARIANT.value}`: "
      f"{config.data.resolution} px, batch {config.batch_size}, {config.num_steps} steps, "
      f"seeds {seeds}; test split of {config.data.num_test} faces. Mean +- std over seeds. "
      f"Wall time {total / 60:.0f} min on this machine.", "",
      *summarize(results), "", *curve_lines(curves), "![curves](curves.png)", "",
      "CycleGAN has no residual: its V-fidelity is F(c) against the photo with another image's "
      "lighting and background, which it cannot take, and it has no residual_r2.",
      "expression_r2_renders is the expression regressor's R^2 on the exact renders (its ceiling).",
      "The paper (Harley et al.) judged its faces experiment by eye only; there is no paper number."]
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
