"""Cycle consistency of any two-way translator, on data without ground truth (your own folders).

For every pair of domains (a, b) of the method: ``cycle_psnr/a2b2a`` and ``cycle_ssim/a2b2a``
score translate_b2a(translate_a2b(x, reference=y), reference=x) against x over the first
``config.eval.cycle.num_images`` test images x of a, y a test image of b ([-1, 1] images, data
range 2). On the way back the reference is x itself: a method that takes a style from its
reference (uncoop's residual) gets back what the cycle through b dropped, as in its cycle 1. How faithful a translation is needs ground
truth (``faces``, ``cross_domain``); this says whether the two maps invert each other.
"""
from __future__ import annotations

import itertools

import numpy as np

from disen_jax.errors import ConfigError
from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.cross_domain import batched

DEFAULTS = dict(num_images=256, batch_size=64)


def directions(domains) -> list[tuple[str, str]]:
  return [(a, b) for a, b in itertools.permutations(domains, 2)]


def needs(spec, config) -> Needs:
  del config
  if len(spec.domains) < 2:
    raise ConfigError(f"config.evals: evaluator 'cycle' needs a method of two domains or more; "
                      f"this one has {tuple(spec.domains)}")
  return Needs(maps=tuple(f"translate_{a}2{b}" for a, b in directions(spec.domains)),
               domains=tuple(spec.domains))


def evaluate(maps, test_ds, *, config, workdir=None, step=None) -> dict[str, float]:
  del workdir, step
  ev = config.eval.cycle
  out = {}
  for a, b in directions(sorted(test_ds.domains)):
    x = np.asarray(test_ds.domains[a][:ev.num_images])
    others = np.asarray(test_ds.domains[b])
    ref_b = others[np.arange(len(x)) % len(others)]  # b images lending their style on the way there
    there, back = maps[f"translate_{a}2{b}"], maps[f"translate_{b}2{a}"]
    cycled = batched(lambda imgs, refs: back(there(imgs, refs), imgs), x, ref_b, size=ev.batch_size)
    out[f"cycle_psnr/{a}2{b}2{a}"] = metrics.psnr(cycled, x)
    out[f"cycle_ssim/{a}2{b}2{a}"] = metrics.ssim(cycled, x)
  return out
