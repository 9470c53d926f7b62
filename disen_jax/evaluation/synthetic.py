"""Scores on Harley et al.'s synthetic benchmark: how well D(v) = (translate_v2c(v), residual(v))
recovers the true (c, r) of every test v (``abs_rho``: |Pearson| of the residual and the true r)."""
from __future__ import annotations

import numpy as np

from disen_jax.data import Dataset
from disen_jax.evaluation import Needs
from disen_jax.evaluation.metrics import corr_matrix


def correlations(pred_c, pred_r, true_c, true_r) -> np.ndarray:
  """2x2 Pearson matrix corr((c', r'), (c, r)): rows learned factors, columns true ones."""
  pred = np.stack([np.ravel(pred_c), np.ravel(pred_r)], axis=1)
  true = np.stack([np.ravel(true_c), np.ravel(true_r)], axis=1)
  return corr_matrix(pred, true)


DEFAULTS = {}


def needs(spec, config) -> Needs:
  del spec, config
  return Needs(maps=("translate_v2c", "residual"), domains=("v",), fields=("v/c", "v/r"))


def evaluate(maps, test_ds: Dataset, *, config=None, workdir=None, step=None) -> dict[str, float]:
  del config, workdir, step
  v = test_ds.domains["v"]
  corr = correlations(maps["translate_v2c"](v), maps["residual"](v), test_ds.extras["v/c"],
                      test_ds.extras["v/r"])
  return {"abs_rho": float(abs(corr[1, 1])), "abs_rho_c": float(abs(corr[0, 0])),
          "corr_c_c": float(corr[0, 0]), "corr_c_r": float(corr[0, 1]),
          "corr_r_c": float(corr[1, 0]), "corr_r_r": float(corr[1, 1])}
