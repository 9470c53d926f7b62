"""Benaim & Wolf 2018, Figure 3 (offline): accuracy of a digit classifier on T_ab(x), x in MNIST's
test set, translated to photo-MNIST (``disen_jax/data/photo_mnist.py``, the offline stand-in for
SVHN), against the number of MNIST training examples, for OST, OST without selective backprop and
the library's CycleGAN.

  python experiments/ost_mnist.py --out=experiments/results/ost_mnist

Phase I (the photo-MNIST autoencoder) is trained once (``configs/ost_mnist.py:cpu``); every OST
run is its phase II from that state (``config.init_from``) with ``--points`` examples of a (0 =
all) drawn with ``a_seed = run``; CycleGAN trains from scratch on the same a examples for
``--cyclegan_steps``. The classifier (``evaluation.translation_accuracy``) is trained once on
photo-MNIST's training split and shared. Writes results.json, results.md and accuracy.png to
``--out``; run dirs go to ``--workdir`` (not committed).
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from disen_jax import config_lib, train  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.DEFINE_string("out", os.path.join(ROOT, "experiments", "results", "ost_mnist"), "results dir")
WORKDIR = flags.DEFINE_string("workdir", "/tmp/ost_mnist_runs", "run dirs (not committed)")
POINTS = flags.DEFINE_list("points", ["1", "4", "16", "0"], "numbers of a examples (0 = all)")
RUNS = flags.DEFINE_integer("runs", 2, "runs per point (a_seed and seed = 0 .. runs-1)")
PHASE1 = flags.DEFINE_integer("phase1_steps", 2000, "phase I steps (shared by every OST run)")
PHASE2 = flags.DEFINE_integer("phase2_steps", 500, "phase II steps per OST run")
CYCLEGAN = flags.DEFINE_integer("cyclegan_steps", 1000, "CycleGAN steps per run (from scratch)")
CYCLEGAN_SIZE = flags.DEFINE_list("cyclegan_size", ["16", "4"], "CycleGAN features, residual blocks")
NUM_TEST = flags.DEFINE_integer("num_test", 2000, "MNIST test digits translated per run")
FEATURES = flags.DEFINE_integer("features", 32, "OST base width (and its critic's)")
REPORT_ONLY = flags.DEFINE_bool("report_only", False, "only rewrite results.md and the plot from results.json")
CLASSIFIER = flags.DEFINE_integer("classifier_steps", 1500, "steps of the photo-MNIST classifier")
METHODS = ("ost", "ost_no_selective", "cyclegan")
KEY = "translation_accuracy/{}2{}"


def ost_config(cache_dir: str):
  c = config_lib.sibling(os.path.join(ROOT, "configs", "x.py"), "ost_mnist", "cpu")
  c.phases.autoencode, c.phases.one_shot = PHASE1.value, PHASE2.value
  c.data.num_test = NUM_TEST.value
  c.model.features = c.model.disc_features = FEATURES.value
  c.eval.translation_accuracy.cache_dir = cache_dir
  c.eval.translation_accuracy.classifier_steps = CLASSIFIER.value
  return c


def cyclegan_config(ost, steps: int):
  """The library's CycleGAN (``configs/cyclegan_faces.py:cpu``'s networks, 2-layer PatchGAN at
  32 px) on the same data: its domains v, c are photo_mnist's a, b."""
  c = config_lib.sibling(os.path.join(ROOT, "configs", "x.py"), "cyclegan_faces", "cpu")
  c.data = ost.data.copy_and_resolve_references()
  c.data.domains = {"v": "a", "c": "b"}
  c.evals = ("translation_accuracy",)
  c.eval.translation_accuracy.update(dict(ost.eval.translation_accuracy.to_dict(), source="v", target="c"))
  c.model.disc_layers = 2
  c.model.features, c.model.num_blocks = (int(v) for v in CYCLEGAN_SIZE.value)
  c.model.disc_features = c.model.features
  c.batch_size, c.seed, c.num_steps = ost.batch_size, ost.seed, steps
  c.log_every, c.eval_every = 100, steps
  c.checkpoint_every = steps
  return c


def run(config, workdir: str) -> dict:
  if os.path.isfile(os.path.join(workdir, "eval_final.json")):
    return json.load(open(os.path.join(workdir, "eval_final.json")))
  return train.train_and_evaluate(config, workdir)[1]


def plot(results: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  points = list(results["accuracy"])
  xs = np.arange(len(points))
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for m in METHODS:
    accs = [results["accuracy"][p][m] for p in points]
    means = [np.mean(a) if a else np.nan for a in accs]  # nan: a point not reached
    ax.plot(xs, means, "o-", label=m)
    for x, a in zip(xs, accs):
      ax.scatter([x] * len(a), a, s=8, alpha=0.5)
  ax.axhline(results["classifier_accuracy"], ls="--", c="gray", label="classifier on real b")
  ax.axhline(10, ls=":", c="gray", label="chance")
  ax.set_xticks(xs, [("all " + str(results["num_a_all"])) if p == "0" else p for p in points])
  ax.set_xlabel("MNIST training examples (a)")
  ax.set_ylabel("accuracy on T_ab(MNIST test) (%)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def save(acc: dict, classifier: float, start: float, num_a_all: int, base) -> dict:
  results = {"accuracy": acc, "classifier_accuracy": round(classifier, 2),
             "seconds": round(time.time() - start, 1), "num_a_all": num_a_all,
             "budget": {"phase1_steps": PHASE1.value, "phase2_steps": PHASE2.value,
                        "cyclegan_steps": CYCLEGAN.value,
                        "cyclegan_features_blocks": [int(v) for v in CYCLEGAN_SIZE.value], "runs": RUNS.value, "features": FEATURES.value,
                        "classifier_steps": CLASSIFIER.value, "batch_size": base.batch_size,
                        "num_test": NUM_TEST.value}}
  with open(os.path.join(FLAGS.value, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  plot(results, os.path.join(FLAGS.value, "accuracy.png"))
  report(results, os.path.join(FLAGS.value, "results.md"))
  return results


PAPER = ("Benaim & Wolf 2018, Figure 3 (MNIST -> SVHN): OST trained on one MNIST example is about as "
         "accurate as CycleGAN / UNIT trained on many, and well above them at 1-16 examples; OST "
         "without selective backprop is below OST. (The paper gives curves, not a table; we could "
         "not read exact values offline, so none are copied here.)")


def report(results: dict, path: str) -> None:
  """results.md: the measured table beside the paper's claim."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  b = results["budget"]
  lines = ["# OST on MNIST -> photo-MNIST (offline Figure 3)", "",
           "Accuracy (%) of a photo-MNIST digit classifier on T_ab(x) for the first "
           f"{b['num_test']} MNIST test digits x; one value per run.", "",
           "| MNIST examples | OST | OST, no selective backprop | CycleGAN |", "|---|---|---|---|"]
  fmt = lambda a: ", ".join(f"{v:.1f}" for v in a) + (f" (mean {np.mean(a):.1f})" if len(a) > 1 else "") if a else "not reached"
  for p, row in results["accuracy"].items():
    name = f"all ({results['num_a_all']})" if p == "0" else p
    lines.append(f"| {name} | {fmt(row['ost'])} | {fmt(row['ost_no_selective'])} | {fmt(row['cyclegan'])} |")
  lines += ["", f"Classifier on real photo-MNIST test images: {results['classifier_accuracy']:.1f}% "
            "(the ceiling of the measure); chance 10%.", "",
            f"Budget: {json.dumps(b)}; {results['seconds'] / 60:.0f} min wall on a shared 2-core CPU.",
            "", "Paper: " + PAPER, ""]
  with open(path, "w") as f:
    f.write("\n".join(lines))


def main(_):
  if REPORT_ONLY.value:
    results = json.load(open(os.path.join(FLAGS.value, "results.json")))
    plot(results, os.path.join(FLAGS.value, "accuracy.png"))
    report(results, os.path.join(FLAGS.value, "results.md"))
    return
  start = time.time()
  os.makedirs(FLAGS.value, exist_ok=True)
  cache = os.path.join(WORKDIR.value, "eval_cache")
  base = ost_config(cache)
  first = base.copy_and_resolve_references()
  first.phases.one_shot = 0
  first_dir = os.path.join(WORKDIR.value, "phase1")
  if not os.path.isdir(os.path.join(first_dir, "checkpoints")) or not os.listdir(os.path.join(first_dir, "checkpoints")):
    train.train_and_evaluate(first, first_dir)
  from disen_jax import data as datalib  # pylint: disable=g-import-not-at-top
  every_a = base.data.copy_and_resolve_references()
  every_a.num_a = 0
  num_a_all = datalib.build(every_a, "train").sizes()["a"]
  acc, classifier = {}, None
  for p in POINTS.value:
    acc[p] = {m: [] for m in METHODS}
    for r in range(RUNS.value):
      for m in METHODS:
        c = base.copy_and_resolve_references()
        c.data.num_a, c.data.a_seed, c.seed = int(p), r, r
        if m == "cyclegan":
          c = cyclegan_config(c, CYCLEGAN.value)
          key = KEY.format("v", "c")
        else:
          c.init_from, c.selective = first_dir, m == "ost"
          key = KEY.format("a", "b")
        final = run(c, os.path.join(WORKDIR.value, f"{m}_n{p}_run{r}"))
        acc[p][m].append(round(100 * final[key], 2))
        classifier = 100 * final.get("classifier_accuracy/b", final.get("classifier_accuracy/c"))
        print(f"n_a={p} run={r} {m}: {acc[p][m][-1]:.1f}%", flush=True)
        results = save(acc, classifier, start, num_a_all, base)  # after every run: partial results survive
  print(json.dumps(results, indent=2))


if __name__ == "__main__":
  app.run(main)
