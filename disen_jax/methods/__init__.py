"""Method registry: ``config.method`` names a module of this package.

Every method module exposes the same pure functions:

* ``init(rng, config, batch) -> State``
* ``train_step(state, batch, *, config) -> (State, metrics)``: jittable, vmappable over seeds;
* ``maps(state, config) -> dict``: the trained maps the benchmarks evaluate (e.g. ``v2c``);
* ``sample(state, batch, *, config) -> dict[str, images]``: image rows for the sample grids;
* ``DOMAINS``: the domain names a batch must carry.
"""
from __future__ import annotations

import importlib
import types

METHODS = ("uncoop", "cyclegan", "cross_domain")


def get(name: str) -> types.ModuleType:
  if name not in METHODS:
    raise ValueError(f"config.method={name!r} is not a known method; known: {list(METHODS)}")
  return importlib.import_module(f"disen_jax.methods.{name}")
