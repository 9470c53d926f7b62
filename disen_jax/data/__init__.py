"""Data sources and the input pipeline.

A *source* is a function ``build(data_config, split) -> Dataset`` registered by name with
``@register("name")``; the engine looks it up from ``config.data.source`` (``"cycle_gan/facades"``
finds the source ``cycle_gan``, which reads the part after the slash). A ``Dataset`` holds one
array per domain (``{"v": [N, ...], "c": [M, ...]}``: unpaired domains may have different sizes)
and, for evaluation only, ground-truth arrays aligned with a domain (``extras["v/factors"]``).
Images are float32 NHWC in [-1, 1]; vectors are float32 [N, D]; labels are int32 [N].

A domain is either an in-memory numpy array (procedural and small sources) or a ``lazy.Column``
that decodes one example at a time (files, tfds records): large datasets are never held in
memory as float32. ``build(config.data, "train")`` keeps a lazy training split lazy when its
decoded arrays would take more than ``config.data.in_memory_mb`` MB (default 1024; 0 = always
lazy) and decodes a smaller one once into memory (every host holds all of it): decoding the same
few hundred jpgs every epoch competes with the training step for the CPU (facades at 64 px on 2
cores: 0.90 -> 0.82 s per step). Every other split is materialized into numpy arrays, because
evaluators read test sets whole (sources cap their test splits with ``config.data.num_test``).
``config.data.domains`` (optional) picks and renames a source's domains for a method, e.g.
``{"v": "a", "c": "b"}`` (method's name: source's name).

Training batches come from ``pipeline.local_batches`` (grain): see ``disen_jax/data/pipeline.py``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from disen_jax.data import lazy
from disen_jax.errors import DataError

SOURCES: dict[str, Callable[..., "Dataset"]] = {}
DEFAULTS: dict[str, dict] = {}  # source -> its own config.data fields and their defaults
RANGES: dict[str, dict] = {}  # source -> valid ranges of its own fields (config_lib.check_ranges)


def register(name: str, *, ranges: Mapping[str, str] | None = None, **defaults):
  """Registers a source builder under ``name`` (``config.data.source``); ``defaults`` are the
  source's own ``config.data`` fields (e.g. ``path=""``) and any common field whose default it
  changes (``config_lib.DATA``), so that every config of the source has them; ``ranges`` the
  valid ranges of its numeric fields beyond ``config_lib.RANGES``, e.g. ``{"data.crop": "[0, inf)"}``."""

  def wrap(fn):
    SOURCES[name] = fn
    DEFAULTS[name] = defaults
    RANGES[name] = dict(ranges or {})
    return fn

  return wrap


def _registered(source: str) -> str:
  """The registered name of ``config.data.source`` (``"cycle_gan/facades"`` -> ``"cycle_gan"``)."""
  # Importing the modules registers the built-in sources.
  from disen_jax.data import sources  # noqa: F401  pylint: disable=g-import-not-at-top
  name = source if source in SOURCES else str(source).partition("/")[0]
  if name not in SOURCES:
    raise DataError(f"config.data.source={source!r} is not a known data source; known: {sorted(SOURCES)}")
  return name


def source_ranges(source: str) -> dict:
  """The valid ranges ``source`` declares for its own ``config.data`` fields."""
  return dict(RANGES[_registered(source)])


def source_defaults(source: str) -> dict:
  """The ``config.data`` fields that ``source`` adds or changes, with their defaults."""
  return dict(DEFAULTS[_registered(source)])


@dataclasses.dataclass
class Dataset:
  domains: dict[str, Any]  # name -> np.ndarray [N, ...] or lazy.Column
  extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  paired: bool = False  # paired domains share one index per example

  def __post_init__(self):
    if not self.domains:
      raise DataError("a Dataset needs at least one domain")
    for name, arr in self.domains.items():
      if len(arr) == 0:
        raise DataError(f"domain {name!r} is empty")
    if self.paired and len({len(a) for a in self.domains.values()}) != 1:
      raise DataError("paired domains must have the same number of examples")

  def sizes(self) -> dict[str, int]:
    return {k: len(v) for k, v in self.domains.items()}

  def select(self, names: Sequence[str]) -> "Dataset":
    """Only the domains ``names`` (and their extras), e.g. those a method trains on."""
    keep = lambda key: key.split("/")[0] in names
    return Dataset({n: self.domains[n] for n in names}, {k: v for k, v in self.extras.items() if keep(k)},
                   self.paired)

  def rename(self, mapping: Mapping[str, str], field: str = "config.data.domains") -> "Dataset":
    """The domains ``mapping`` names (new name -> this dataset's name), renamed, with their extras."""
    missing = sorted(old for old in mapping.values() if old not in self.domains)
    if missing:
      raise DataError(f"{field}={dict(mapping)!r} names domain(s) {missing} that the source does "
                       f"not have; it has {sorted(self.domains)}")
    extras = {f"{new}/{k.split('/', 1)[1]}": v for new, old in mapping.items()
              for k, v in self.extras.items() if k.split("/")[0] == old}
    return Dataset({new: self.domains[old] for new, old in mapping.items()}, extras, self.paired)

  def with_label(self, field: str) -> "Dataset":
    """``extras["<d>/label"]`` (int32) for every domain ``d``, from the source's field ``field``
    (``config.data.label``): a column of a paired source (which leaves the domains) or the
    extra ``<d>/<field>`` of a domain."""
    domains, extras = dict(self.domains), dict(self.extras)
    column = domains.pop(field, None)
    if column is not None and not self.paired:
      raise DataError(f"config.data.label={field!r} is a domain of an unpaired source, not a field "
                      "of every example")
    found = {}
    for d in domains:
      values = column if column is not None else extras.get(f"{d}/{field}")
      if values is not None:
        values = np.asarray(values)
        if values.shape != (len(domains[d]),) or not np.issubdtype(values.dtype, np.integer):
          raise DataError(f"config.data.label={field!r}: expected one integer class per example of "
                          f"domain {d!r}, got {values.dtype} {values.shape}")
        found[f"{d}/label"] = values.astype(np.int32)
    if not found:
      fields = sorted(set(self.domains) | {k.split("/", 1)[1] for k in self.extras})
      raise DataError(f"config.data.label={field!r}: the source has no such field; it has {fields}")
    return Dataset(domains, {**extras, **found}, self.paired)

  def materialize(self, data_config=None) -> "Dataset":
    """The same dataset with every lazy domain decoded into a numpy array."""
    if not any(isinstance(v, lazy.Column) for v in self.domains.values()):
      return self
    domains = lazy.materialize(self.domains, threads=lazy.num_threads(data_config))
    return Dataset(domains, self.extras, self.paired)


def split_limit(data_config, split: str) -> int:
  """``config.data.num_train`` / ``num_test``: how many examples of ``split`` to keep (0 = all)."""
  field = "num_train" if split == "train" else "num_test"
  limit = data_config[field]
  if not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 0:
    raise DataError(f"config.data.{field}={limit!r} must be an int >= 0 (0 = all)")
  return int(limit)


def capped(examples: lazy.Examples, data_config, split: str) -> lazy.Examples:
  """The first ``split_limit`` examples (all if the limit is 0)."""
  limit = split_limit(data_config, split)
  return examples.subset(np.arange(min(limit, len(examples)))) if limit else examples


def source_name(data_config) -> tuple[str, str | None]:
  """``("cycle_gan", "facades")`` for ``config.data.source = "cycle_gan/facades"``."""
  name, _, sub = str(data_config.source).partition("/")
  return name, sub or None


def build(data_config, split: str) -> Dataset:
  """Builds ``split`` ('train' | 'test') of the source named by ``data_config.source``: the
  source's domains, its ``config.data.label`` field as ``extras["<domain>/label"]``, renamed by
  ``config.data.domains``; a small training split and every test split decoded into memory."""
  ds = SOURCES[_registered(data_config.source)](data_config, split)
  if data_config.label:
    ds = ds.with_label(data_config.label)
  if data_config.domains:
    ds = ds.rename(data_config.domains)
  if split == "train" and lazy_megabytes(ds) > in_memory_limit(data_config):
    return ds
  return ds.materialize(data_config)


def labelled_subset(labels, num_labels: int, seed: int, *, what: str = "the training split") -> np.ndarray:
  """Sorted indices of ``num_labels`` examples of ``labels``, the same number of each class,
  drawn with ``seed`` (``config.data.num_labels`` / ``labels_seed``)."""
  labels = np.asarray(labels)
  classes, counts = np.unique(labels, return_counts=True)
  if not isinstance(num_labels, (int, np.integer)) or num_labels < 0:
    raise DataError(f"config.data.num_labels={num_labels!r} must be an int >= 0 (0 = every label)")
  if num_labels > len(labels):
    raise DataError(f"config.data.num_labels={num_labels} is more than the {len(labels)} examples of {what}")
  if num_labels % len(classes):
    raise DataError(f"config.data.num_labels={num_labels} is not divisible by the {len(classes)} "
                    f"classes of {what} (the labelled subset is balanced per class)")
  per_class = num_labels // len(classes)
  short = [int(c) for c, n in zip(classes, counts) if n < per_class]
  if short:
    raise DataError(f"config.data.num_labels={num_labels}: class(es) {short} of {what} have fewer "
                    f"than {per_class} examples")
  rng = np.random.default_rng([int(seed)])
  chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
  return np.sort(np.concatenate(chosen)).astype(np.int64)


def in_memory_limit(data_config) -> float:
  """``config.data.in_memory_mb``: the largest lazy training split (MB decoded) kept in memory."""
  limit = data_config.in_memory_mb
  if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
    raise DataError(f"config.data.in_memory_mb={limit!r} must be a number >= 0 (0 = never)")
  return limit


def lazy_megabytes(ds: Dataset) -> float:
  """Size of ``ds``'s lazy domains once decoded (MB); 0 if all are in memory already."""
  return sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in ds.domains.values()
             if isinstance(v, lazy.Column)) / 2**20


# The pipeline (imported last: it uses Dataset).
from disen_jax.data.pipeline import (  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
    batch_indices, get_batch, iterator, local_batches)
