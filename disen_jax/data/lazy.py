"""Domains decoded on demand, so that large datasets never sit in memory as float32 arrays.

A source that reads files or tfds records wraps them in ``Examples``: random access to records
(a tfds data source, a list of file paths, a uint8 array, ...) and a ``decode(record) -> dict``
that turns one record into the example's fields (float32 images, int32 labels). Nothing is
decoded until read, except example 0, which is decoded at construction so that the fields'
shapes are known and a bad record fails before training starts. ``Examples.columns()`` gives one
array-like ``Column`` per field: ``len``, ``shape``, ``dtype``, ``col[i]``, ``col[slice or
indices]`` (stacked) and ``np.asarray(col)`` (decodes everything), which is what
``Dataset.domains`` holds for such a source.

``reader(domains)`` reads index ``i`` of every domain and decodes each record once even when
several domains are fields of the same ``Examples`` (paired data: a side-by-side jpg gives two
domains); ``materialize(domains)`` decodes whole domains that way with grain's thread pool.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import grain
import numpy as np

from disen_jax.errors import DataError


class Examples:
  """``examples[i] = decode(records[indices[i]])``, a dict of arrays (see the module docstring)."""

  def __init__(self, records: Sequence, decode: Callable[[Any], dict], *, indices=None,
               what: str = "data", spec: dict | None = None):
    self.records, self.decode, self.what = records, decode, what
    self.indices = np.arange(len(records)) if indices is None else np.asarray(indices, np.int64)
    if not len(self.indices):
      raise DataError(f"{what}: no examples")
    if spec is None:
      try:
        first = self[0]
      except Exception as e:  # pylint: disable=broad-except
        raise DataError(f"{what}: cannot decode its first example: {type(e).__name__}: {e}") from e
      spec = {k: (np.shape(v), np.asarray(v).dtype) for k, v in first.items()}
    self.spec = spec

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i) -> dict:
    return self.decode(self.records[int(self.indices[i])])

  def subset(self, indices) -> "Examples":
    """The examples at ``indices`` (positions in this ``Examples``), decoded the same way."""
    return Examples(self.records, self.decode, indices=self.indices[np.asarray(indices, np.int64)],
                    what=self.what, spec=self.spec)

  def columns(self) -> dict[str, "Column"]:
    return {name: Column(self, name) for name in self.spec}


class Column:
  """One field of an ``Examples`` as a read-only, decode-on-read array."""

  def __init__(self, examples: Examples, field: str):
    self.examples, self.field = examples, field

  def __len__(self) -> int:
    return len(self.examples)

  @property
  def shape(self) -> tuple:
    return (len(self.examples), *self.examples.spec[self.field][0])

  @property
  def dtype(self):
    return self.examples.spec[self.field][1]

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      return self.examples[key][self.field]
    return np.stack([self.examples[i][self.field] for i in np.arange(len(self))[key]])

  def __array__(self, dtype=None, copy=None):
    del copy
    arr = materialize({self.field: self})[self.field]
    return arr if dtype is None else arr.astype(dtype)

  def __repr__(self) -> str:
    return f"Column({self.examples.what}/{self.field}, shape={self.shape}, dtype={self.dtype})"


def reader(domains: Mapping[str, Any]) -> Callable[[int], dict]:
  """``read(i) -> {domain: domains[domain][i]}``, decoding each ``Examples`` record once."""
  groups: dict[int, tuple[Examples, list[tuple[str, str]]]] = {}
  eager = {}
  for name, arr in domains.items():
    if isinstance(arr, Column):
      groups.setdefault(id(arr.examples), (arr.examples, []))[1].append((name, arr.field))
    else:
      eager[name] = arr

  def read(i: int) -> dict:
    out = {name: arr[i] for name, arr in eager.items()}
    for examples, fields in groups.values():
      example = examples[i]
      out.update({name: example[field] for name, field in fields})
    return out

  return read


def num_threads(data_config=None) -> int:
  """Decoding threads: ``config.data.num_threads``, else grain's default (``grain.ReadOptions``)."""
  n = data_config.num_threads if data_config is not None else 0
  if not isinstance(n, int) or n < 0:
    raise DataError(f"config.data.num_threads={n!r} must be an int >= 0 (0 = grain's default)")
  return n or grain.ReadOptions().num_threads


def materialize(domains: Mapping[str, Any], *, threads: int | None = None) -> dict[str, np.ndarray]:
  """Every domain as an in-memory numpy array (lazy ones decoded with grain's thread pool);
  domains that share an ``Examples`` are decoded together, each record once."""
  groups: dict[int, dict[str, Any]] = {}
  out = {}
  for name, arr in domains.items():
    if isinstance(arr, Column):
      groups.setdefault(id(arr.examples), {})[name] = arr
    else:
      out[name] = np.asarray(arr)
  threads = threads or num_threads()
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=2 * threads)
  for group in groups.values():
    n = len(next(iter(group.values())))
    rows = list(grain.MapDataset.range(n).map(reader(group)).to_iter_dataset(options))
    out.update({name: np.stack([r[name] for r in rows]) for name in group})
  return {name: out[name] for name in domains}
