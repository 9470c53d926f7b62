"""Gonzalez-Garcia et al. (NeurIPS 2018) on paired facades: cross-domain retrieval and figures.

Trains ``configs/cross_domain_facades.py:<--variant>`` (default ``cpu``) with the library's
engine in ``--runs/facades`` (rerunning resumes), then writes to ``--out`` ``results.json``
(``{"recall@1": {"shared"|"exclusive"|"pixels": {"x2y": .., "y2x": ..}}, ...}``, fractions;
x = facade photo, y = label map, so ``x2y`` is F -> L), ``results.md`` beside the paper's
numbers, and the PNG grids. Retrieval is over the 106 test pairs; a hit is the query's own pair.

The data are the paired CMP Facades folders (``A`` photos, ``B`` label maps; ``--facades_dir``,
default the config's ``../shared/data/facades``) read by the ``folders`` source with
``paired=True``. tfds ``cycle_gan/facades`` cannot replace them: it is CycleGAN's *unpaired*
release, and this method trains and evaluates on pairs.

  python experiments/cross_domain_facades.py --out=experiments/results/cross_domain_facades
"""
from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cross_domain_common as common  # pylint: disable=g-import-not-at-top
from disen_jax.evaluation import cross_domain as cd_eval  # pylint: disable=g-import-not-at-top

_FACADES_DIR = flags.DEFINE_string("facades_dir", None, "Folder with A/ (photos) and B/ (label maps).")

# Gonzalez-Garcia et al. 2018, facades cross-domain retrieval, Recall@1 (%), shared features.
PAPER = {"shared": {"x2y": 95.0, "y2x": 97.0}}
DIRECTIONS = {"x2y": "F -> L", "y2x": "L -> F"}


def main(argv):
  del argv
  out, config = common.start("facades")
  variant = common.VARIANT.value
  if _FACADES_DIR.value:
    config.data.folders = {"x": os.path.join(_FACADES_DIR.value, "A"),
                           "y": os.path.join(_FACADES_DIR.value, "B")}
  results = common.run(config, "facades", out)
  results.update(paper={"recall@1": PAPER}, variant=variant)
  common.write_json(out, results)
  common.write_markdown(out, common.intro(
      "Cross-domain disentanglement on paired facades (Gonzalez-Garcia et al. 2018)", "facades", results) + [
      "## Cross-domain retrieval, Recall@1 (%)", "",
      "Each test image queries the other domain's test images by Euclidean distance; a hit is "
      "the query's own pair (F = facade photo, L = label map). The paper reports shared "
      "features only.", ""]
      + cd_eval.retrieval_table(results, PAPER, DIRECTIONS)
      + ["", f"How much closer a pair's shared features are than two strangers' (mean own-pair "
         f"distance / mean distance between different pairs; 0 = aligned, 1 = no closer): "
         f"S {results['shared_pair_ratio']:.3f}, E {results['exclusive_pair_ratio']:.3f}.",
         "", common.recall_history_line(results), "", common.FIGURES])
  print(json.dumps(results["recall@1"], indent=2))
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
