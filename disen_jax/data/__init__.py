"""Data sources and the batching pipeline.

A *source* is a function ``build(data_config, split) -> Dataset`` registered by name with
``@register("name")``; the engine looks it up from ``config.data.source``. A ``Dataset`` holds one
array per domain (``{"v": [N, ...], "c": [M, ...]}``: unpaired domains may have different sizes)
and, for evaluation only, ground-truth arrays aligned with a domain (``extras["v/factors"]``).
Images are float32 NHWC in [-1, 1]; vectors are float32 [N, D].

Batches are a pure function of (seed, step): each domain is read in a fresh seeded permutation
per epoch, so a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

SOURCES: dict[str, Callable[..., "Dataset"]] = {}


def register(name: str):
  """Registers a source builder under ``name`` (``config.data.source``)."""

  def wrap(fn):
    SOURCES[name] = fn
    return fn

  return wrap


@dataclasses.dataclass
class Dataset:
  domains: dict[str, np.ndarray]
  extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  paired: bool = False  # paired domains share one index per example

  def __post_init__(self):
    if not self.domains:
      raise ValueError("a Dataset needs at least one domain")
    for name, arr in self.domains.items():
      if len(arr) == 0:
        raise ValueError(f"domain {name!r} is empty")
    if self.paired and len({len(a) for a in self.domains.values()}) != 1:
      raise ValueError("paired domains must have the same number of examples")

  def sizes(self) -> dict[str, int]:
    return {k: len(v) for k, v in self.domains.items()}


def build(data_config, split: str) -> Dataset:
  """Builds ``split`` ('train' | 'test') of the source named by ``data_config.source``."""
  # Importing the modules registers the built-in sources.
  from disen_jax.data import sources  # noqa: F401  pylint: disable=g-import-not-at-top

  name = data_config.source
  if name not in SOURCES:
    raise ValueError(
        f"config.data.source={name!r} is not a known data source; known: {sorted(SOURCES)}")
  return SOURCES[name](data_config, split)


def _epoch_indices(seed: int, domain_id: int, epoch: int, n: int) -> np.ndarray:
  rng = np.random.default_rng([seed, domain_id, epoch])
  return rng.permutation(n)


def batch_indices(n: int, batch_size: int, step: int, *, seed: int, domain_id: int = 0) -> np.ndarray:
  """Indices of the examples of global batch ``step`` in a domain of ``n`` examples.

  Each epoch is a fresh permutation seeded by (seed, domain_id, epoch); a batch that runs past
  the end of an epoch continues into the next one.
  """
  start = step * batch_size
  out = []
  while len(out) < batch_size:
    epoch, offset = divmod(start + len(out), n)
    perm = _epoch_indices(seed, domain_id, epoch, n)
    out.extend(perm[offset:offset + batch_size - len(out)].tolist())
  return np.asarray(out, dtype=np.int64)


def get_batch(ds: Dataset, batch_size: int, step: int, *, seed: int,
              process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
  """The part of global batch ``step`` that this process loads (all of it on one host).

  Every process computes the same global indices and keeps its contiguous slice, so the global
  batch assembled with ``jax.make_array_from_process_local_data`` is the same for any number of
  processes.
  """
  if batch_size % process_count:
    raise ValueError(f"config.batch_size={batch_size} is not divisible by the {process_count} processes")
  local = batch_size // process_count
  sl = slice(process_index * local, (process_index + 1) * local)
  out = {}
  for i, (name, arr) in enumerate(sorted(ds.domains.items())):
    n = len(arr)
    idx = batch_indices(n, batch_size, step, seed=seed, domain_id=0 if ds.paired else i)
    out[name] = arr[idx[sl]]
  return out
