"""Reconstruction through a method's own code: decode_<d>(encode_<d>(x)) against x on the test
split, for the domains of ``config.eval.reconstruction.domains`` (empty: every domain of the
method). ``reconstruction_mse/<d>`` (mean squared error), and ``reconstruction_psnr/<d>`` for
images ([-1, 1], data range 2). ``encode_<d>`` may return a tuple (e.g. shared and exclusive
parts); ``decode_<d>`` then takes its parts as arguments.
"""
from __future__ import annotations

import numpy as np

from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.cross_domain import batched

DEFAULTS = dict(domains=(), num_examples=1024, batch_size=128)


def _domains(spec, config) -> tuple[str, ...]:
  return tuple(config.eval.reconstruction.domains) or tuple(spec.domains)


def needs(spec, config) -> Needs:
  domains = _domains(spec, config)
  return Needs(maps=tuple(f"{kind}_{d}" for d in domains for kind in ("encode", "decode")),
               domains=domains)


def reconstruct(maps, domain: str, x):
  code = maps[f"encode_{domain}"](x)
  return maps[f"decode_{domain}"](*code) if isinstance(code, (tuple, list)) else maps[f"decode_{domain}"](code)


def evaluate(maps, test_ds, *, config, workdir=None, step=None) -> dict[str, float]:
  del workdir, step
  ev = config.eval.reconstruction
  out = {}
  for d in ev.domains or sorted(test_ds.domains):  # the engine passes the method's domains
    x = np.asarray(test_ds.domains[d][:ev.num_examples])
    rec = batched(lambda v, d=d: reconstruct(maps, d, v), x, size=ev.batch_size)
    out[f"reconstruction_mse/{d}"] = float(np.mean((np.asarray(rec, np.float64) - x) ** 2))
    if x.ndim == 4:
      out[f"reconstruction_psnr/{d}"] = metrics.psnr(rec, x)
  return out
