"""Gonzalez-Garcia et al. (NeurIPS 2018), the Table 3 ablations on MNIST-CD/CB.

Trains the full model and one model per ablation switch of ``configs/cross_domain_mnist.py``
(``no_auto``, ``normal_auto``, ``no_grl``, ``no_noise``, ``no_shared_l1``, ``no_latent_recon``),
each in ``--runs/ablation_<row>`` (rerunning resumes; finished rows are kept), and reports per
row the *analogy error*: the mean Euclidean distance (pixel values in [0, 1]) between
``F_d(S_i, E_j)`` and the exact image of digit i in image j's colour, which colored MNIST gives
exactly (MNIST-CD: digit colour; MNIST-CB: background colour), with the shared-feature Recall@1.
Writes ``--out``/results.json, results.md and each row's figures in ``--out``/<row>/; a
``--out``/notes.md (what is known about how and when the rows ran) is appended to results.md.

  python experiments/cross_domain_ablation.py --steps=1000 --hold_fraction=1 \
      --out=experiments/results/cross_domain_ablation
  python experiments/cross_domain_ablation.py --rows=full,no_grl --out=...
"""
from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cross_domain_common as common  # pylint: disable=g-import-not-at-top

ROWS = ("full", "no_auto", "normal_auto", "no_grl", "no_noise", "no_shared_l1", "no_latent_recon")
DESCRIPTION = {
    "full": "the full model",
    "no_auto": "without the cross-domain autoencoders",
    "normal_auto": "plain autoencoders F_d(S^X, E^X) instead of cross-domain ones",
    "no_grl": "exclusive decoders without gradient reversal",
    "no_noise": "no noise on the decoder input",
    "no_shared_l1": "without the L1 between S^X and S^Y",
    "no_latent_recon": "without the latent reconstruction loss",
}
_ROWS = flags.DEFINE_list("rows", list(ROWS), f"Rows to run, of {ROWS}.")
NOTES = "notes.md"  # hand-written facts about the rows' runs in --out, appended to results.md


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  out = common.OUT.value
  unknown = set(_ROWS.value) - set(ROWS)
  if unknown:
    raise app.UsageError(f"--rows: unknown row(s) {sorted(unknown)}; known: {ROWS}")
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, "results.json")
  table = json.load(open(path)) if os.path.exists(path) else {}
  for row in _ROWS.value:
    variant = ",".join(filter(None, [common.VARIANT.value, "" if row == "full" else row]))
    print(f"=== {row}: cross_domain_mnist.py:{variant}", flush=True)
    row_dir = os.path.join(out, row)
    os.makedirs(row_dir, exist_ok=True)
    table[row] = {**common.run(common.make_config("mnist", variant), f"ablation_{row}", row_dir),
                  "variant": variant}
    common.write_json(out, table)  # after every row, so a stopped sweep keeps what it has
    write_markdown(table, out)
  print(f"wrote {out}")


def write_markdown(table: dict, out: str) -> None:
  first = next(iter(table.values()))
  lines = ["# Cross-domain disentanglement: ablations on MNIST-CD/CB (Gonzalez-Garcia et al. Table 3)",
           "", f"`python experiments/cross_domain_ablation.py --steps={first['steps']} "
           f"--hold_fraction={first.get('hold_fraction', 1):g}` "
           f"(config `cross_domain_mnist.py:{common.VARIANT.value}`, batch {first['batch_size']}, "
           f"{first['train_pairs']} training and {first['test_pairs']} held-out test pairs, on "
           f"{common.machine()}).", "",
           "Analogy error: mean Euclidean distance (pixel values in [0, 1], 32x32x3) between the "
           "model's analogy F_d(S_i, E_j) (G_d on MNIST-CB) and the exact image of digit i in image "
           "j's colour, over the held-out test pairs; lower is better. Recall@1 (%) on shared "
           "features S, CD -> CB / CB -> CD: the nearest image of the other domain shows the "
           "query's digit (the paper's protocol), and, stricter, it is the query's own pair.", "",
           "| row | what changes | analogy error CD | analogy error CB | Recall@1 S | "
           "Recall@1 S own pair | minutes |", "|---|---|---|---|---|---|---|"]
  for row in ROWS:
    if row not in table:
      continue
    r = table[row]
    cls, pair = r["recall@1"]["shared"], r["recall@1_pair"]["shared"]
    lines.append(f"| {row} | {DESCRIPTION[row]} | {r['analogy_error']['x']:.3f} | "
                 f"{r['analogy_error']['y']:.3f} | {100 * cls['x2y']:.2f} / {100 * cls['y2x']:.2f} | "
                 f"{100 * pair['x2y']:.2f} / {100 * pair['y2x']:.2f} | {r['seconds'] / 60:.1f} |")
  lines += ["", f"Returning image i unchanged (ignoring E_j) scores CD "
            f"{first['analogy_error_copy']['x']:.3f}, CB {first['analogy_error_copy']['y']:.3f}."]
  missing = [row for row in ROWS if row not in table]
  if missing:
    lines += ["", f"Not run yet: {', '.join(missing)} (`--rows={','.join(missing)}` adds them)."]
  lines += ["", "One run (seed 0) per row: read only differences well beyond the run-to-run spread "
            "(retrain a row with `--seed`). Minutes are the wall time of each row on the day it ran "
            "(`results.json` keeps the machine) and compare only between rows run alone on the same "
            "day."]
  if os.path.exists(os.path.join(out, NOTES)):
    lines += ["", open(os.path.join(out, NOTES)).read().strip()]
  common.write_markdown(out, lines)


if __name__ == "__main__":
  app.run(main)
