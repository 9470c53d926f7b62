"""Benchmarks: each data source with ground truth has an evaluator that scores a method's maps.

``evaluate(method, state, config, test_ds, workdir)`` looks up the evaluator of
``config.data.source`` and returns a flat dict of floats computed on the *test* split.
"""
from __future__ import annotations

import importlib

BENCHMARKS = {
    "synthetic": "disen_jax.evaluation.synthetic",
}


def evaluate(method, state, config, test_ds, workdir: str) -> dict[str, float]:
  module = BENCHMARKS.get(config.data.source)
  if module is None:
    return {}
  maps = method.maps(state, config)
  return importlib.import_module(module).evaluate(maps, test_ds, config=config, workdir=workdir)
