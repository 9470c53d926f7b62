"""What the cross-domain experiments share: flags, one training run, the results files.

Each run is ``train.train_and_evaluate`` of a ``configs/cross_domain_*.py`` variant in its own
workdir under ``--runs`` (checkpoints and samples, not committed), so rerunning an experiment
resumes its runs where they stopped. The figures and ``results.json`` / ``results.md`` go to
``--out``. To choose a setting without the test pairs, ``--validation=N`` trains on the training
split less N held-out pairs and evaluates on those N; ``--set=field=value`` overrides config
fields (e.g. ``--set=optim.term_lr.shared=1.0``).
"""
from __future__ import annotations

import ast
import json
import os
import sys
import time

from absl import flags
from absl import logging
from ml_collections.config_flags import config_path
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from configs import cross_domain_facades, cross_domain_mnist  # pylint: disable=g-import-not-at-top,wrong-import-position
from disen_jax import data as datalib  # pylint: disable=wrong-import-position
from disen_jax import logging as loglib  # pylint: disable=wrong-import-position
from disen_jax import methods  # pylint: disable=wrong-import-position
from disen_jax import train  # pylint: disable=wrong-import-position
from disen_jax.evaluation import cross_domain as cd_eval  # pylint: disable=wrong-import-position

OUT = flags.DEFINE_string("out", None, "Results directory (json, md, png).", required=True)
RUNS = flags.DEFINE_string("runs", "/tmp/cross_domain_runs", "Parent of the runs' workdirs.")
VARIANT = flags.DEFINE_string("variant", "cpu", "Config variant(s), e.g. 'cpu'; '' = the paper's size.")
STEPS = flags.DEFINE_integer("steps", None, "Override config.num_steps.")
SEED = flags.DEFINE_integer("seed", None, "Override config.seed.")
HOLD = flags.DEFINE_float("hold_fraction", None, "Override config.optim.hold_fraction (1 = a "
                          "constant learning rate).")

VALIDATION = flags.DEFINE_integer(
    "validation", 0, "Hold out this many training pairs (a fixed random choice) and evaluate on "
    "them instead of the test split: for choosing settings without looking at the test pairs.")
SET = flags.DEFINE_multi_string("set", [], "A config override, e.g. --set=optim.term_lr.shared=1 "
                                "(repeatable; the value is a Python literal).")

CONFIGS = {"mnist": cross_domain_mnist, "facades": cross_domain_facades}


FIGURES = ("Figures: `diversity_x2y.png` / `diversity_y2x.png` (each row: the input, then its "
           "translations with different noise vectors), `analogies_x.png` / `analogies_y.png` "
           "(cell (i, j): S of the row image with E of the column image), `interpolation_x.png` / "
           "`interpolation_y.png` (pairs of rows: along S, then along E).")


def start(data: str):
  """``(out, config)`` of an experiment's command line; quiets absl logging, creates ``--out``."""
  logging.set_verbosity(logging.WARNING)
  os.makedirs(OUT.value, exist_ok=True)
  return OUT.value, make_config(data, VARIANT.value)


def make_config(data: str, variant: str):
  """``configs/cross_domain_<data>.py:<variant>`` with the command line's overrides."""
  config = CONFIGS[data].get_config(variant or None)
  if STEPS.value:
    config.num_steps = STEPS.value
  if SEED.value is not None:
    config.seed = SEED.value
  if HOLD.value is not None:
    config.optim.hold_fraction = HOLD.value
  for item in SET.value:
    key, _, value = item.partition("=")
    try:  # ml_collections' own setter (that of --config.<field>=): unknown fields are errors
      config_path.set_value(key, config, ast.literal_eval(value))
    except (KeyError, ValueError, SyntaxError, TypeError) as e:
      raise ValueError(f"--set={item}: expected field=value with an existing config field and a "
                       f"Python literal value ({type(e).__name__}: {e})") from e
  return config


def run_name(name: str) -> str:
  """The run's workdir name: runs with other overrides or another evaluation set do not resume it."""
  parts = [name] + [f"val{VALIDATION.value}"] * bool(VALIDATION.value) + list(SET.value)
  return "_".join(parts).replace("/", "-")


def split_validation(config, n: int):
  """``(train, validation)`` from the training split: ``n`` pairs held out by a fixed
  permutation (seed 0) and read as a test split is (no random crops or flips), the rest."""
  plain = config.data.copy_and_resolve_references()
  for field, value in (("load_size", 0), ("random_flip", False)):
    if field in plain:
      plain[field] = value
  train_ds = datalib.build(config.data, "train").materialize(config.data)
  plain_ds = train_ds if plain == config.data else datalib.build(plain, "train").materialize(plain)
  size = train_ds.sizes()[next(iter(train_ds.domains))]
  if not 0 < n < size:
    raise ValueError(f"--validation={n}: must be between 1 and {size - 1} (the training pairs)")
  order = np.random.default_rng(0).permutation(size)
  keep, held = np.sort(order[:size - n]), np.sort(order[size - n:])
  take = lambda ds, idx: datalib.Dataset({k: np.asarray(v)[idx] for k, v in ds.domains.items()},
                                         {k: np.asarray(v)[idx] for k, v in ds.extras.items()},
                                         ds.paired)
  return take(train_ds, keep), take(plain_ds, held)


def run(config, name: str, figures_dir: str) -> dict:
  """Trains (or resumes) ``config`` in ``--runs/<name>``; returns the nested final metrics plus
  run facts, and draws the evaluator's figures into ``figures_dir``."""
  workdir = os.path.join(os.path.abspath(RUNS.value), run_name(name))
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  t0 = time.time()  # the data are built once, inside the timed part as the engine would
  if VALIDATION.value:
    train_ds, test_ds = split_validation(config, VALIDATION.value)
  else:
    train_ds, test_ds = datalib.build(config.data, "train"), datalib.build(config.data, "test")
  state, final = train.train_and_evaluate(config, workdir, datasets=(train_ds, test_ds))
  seconds = time.time() - t0
  cd_eval.save_figures(methods.maps(methods.get(config.method), state, config), test_ds, config,
                       figures_dir)
  results = cd_eval.nested(final)
  results.update(shared_recall_during_training=shared_recall_history(workdir),
                 steps=int(state.step), batch_size=config.batch_size, seconds=round(seconds, 1),
                 hold_fraction=config.optim.hold_fraction,
                 resolution=config.data.resolution, machine=machine(),
                 test_pairs=test_ds.sizes()["x"], train_pairs=train_ds.sizes()["x"],
                 evaluated_on=f"validation: {VALIDATION.value} held-out training pairs"
                 if VALIDATION.value else "test", overrides=list(SET.value))
  return results


def shared_recall_history(workdir: str) -> dict[str, dict[str, float]]:
  """``{step: {"x2y": .., "y2x": ..}}``: test Recall@1 on S at every evaluation of the run."""
  return {step: {d: row[f"recall@1/shared/{d}"] for d in ("x2y", "y2x")}
          for step, row in loglib.read_evals(workdir, "recall@1/shared/x2y").items()}


def recall_history_line(results: dict) -> str:
  """One markdown line: the shared Recall@1 (%) at each evaluation during training."""
  points = [f"{step}: {100 * r['x2y']:.1f} / {100 * r['y2x']:.1f}"
            for step, r in sorted(results["shared_recall_during_training"].items(), key=lambda kv: int(kv[0]))]
  return "Test Recall@1 on S during training (step: x2y / y2x %): " + ", ".join(points) + "."


def intro(title: str, data: str, results: dict) -> list[str]:
  """The first lines of a results.md: title, the command, the setting and the time it took."""
  variant = results["variant"]
  return [f"# {title}", "",
          f"`python experiments/cross_domain_{data}.py --variant={variant}`: config "
          f"`cross_domain_{data}.py:{variant}` ({results['resolution']} px), {results['steps']} steps "
          f"of batch {results['batch_size']} on {results['train_pairs']} training pairs; "
          f"{results['test_pairs']} held-out {'test' if results['evaluated_on'] == 'test' else 'validation'} "
          f"pairs that training never sees"
          + "".join(f", `--set={o}`" for o in results["overrides"]) + "; "
          f"{results['seconds'] / 60:.1f} min for training and evaluation on {results['machine']}.",
          ""]


def write_json(out: str, results: dict) -> None:
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=2)


def write_markdown(out: str, lines: list[str]) -> None:
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def machine() -> str:
  """One line: CPU model and core count, so timings can be read against the hardware."""
  model = "unknown CPU"
  if os.path.exists("/proc/cpuinfo"):
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
  return f"{model}, {os.cpu_count()} cores"
