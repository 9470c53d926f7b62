"""Benchmarks: each data source with ground truth has an evaluator that scores a method's maps.

``evaluate(method, state, config, test_ds, workdir, step)`` looks up the evaluator of
``config.method`` in ``METHOD_BENCHMARKS``, else that of ``config.data.source`` in ``BENCHMARKS``,
and returns a flat dict of floats computed on the *test* split.
"""
from __future__ import annotations

import importlib

BENCHMARKS = {
    "synthetic": "disen_jax.evaluation.synthetic",
    "synthfaces": "disen_jax.evaluation.faces",
    "colored_mnist": "disen_jax.evaluation.cross_domain",
}
# Evaluators that need a method's own maps, on any data (e.g. paired ``folders``); looked up first.
METHOD_BENCHMARKS = {"cross_domain": "disen_jax.evaluation.cross_domain"}


def evaluate(method, state, config, test_ds, workdir: str | None, step: int | None = None
             ) -> dict[str, float]:
  """Scores ``state`` on ``test_ds``; evaluators that draw figures write them under
  ``workdir/samples`` tagged with ``step``."""
  module = METHOD_BENCHMARKS.get(config.method) or BENCHMARKS.get(config.data.source)
  if module is None:
    return {}
  maps = method.maps(state, config)
  return importlib.import_module(module).evaluate(maps, test_ds, config=config, workdir=workdir,
                                                    step=step)
