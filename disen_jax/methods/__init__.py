"""Methods: ``config.method`` names a module of this package, or (with a dot) any importable
module, e.g. ``my_lab.methods.toy``. Nothing else lists them.

A method module exposes these pure functions (the contract; see "Adding a method" in the README):

* ``spec(config) -> Spec``: what it needs from the data and how it trains (below);
* ``init(rng, config, batch, info) -> state``: a pytree; ``batch`` is an example batch with every
  field the spec asks for, ``info`` a ``DataInfo`` (training-set sizes and class counts);
* ``train_step(state, batch, *, config) -> (state, metrics)`` (with ``phase=`` when the spec has
  phases): jittable, the metrics a flat dict of scalars;
* ``map_fns(config) -> {name: fn(params, stats, *args)}``: its trained maps, named in one
  vocabulary: ``encode_<d>(x)`` -> a code (an array or a tuple of parts), ``decode_<d>(*parts)``,
  ``translate_<a>2<b>(x, reference=None)`` (every translate map takes ``reference``: images of
  domain ``b``, one or one per x, whose style the outputs take where the method has one to take,
  e.g. uncoop's residual; others ignore it), plus method-specific names;
  ``maps(method, state, config)`` binds them to a state, jitted;
* ``sample(state, batch, *, config) -> {row name: images}``: rows of the sample grids;
* optional ``start_phase(state, phase, *, config) -> state``: what a phase adds to the state
  (networks it creates); the default starts the phase's optimizer (``common.start_phase``).

The engine checks the spec, the data and the evaluators (``config.evals``) against each other
before anything compiles.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import types
from typing import Any

from disen_jax.errors import ConfigError

# Extra batch fields a method may ask for, each aligned with a domain ``d``:
# ``index``: ``d/index``, the example's position in the training split (per-example latents);
# ``label``: ``d/label``, its class (``config.data.label``), every example labelled;
# ``labelled``: ``d/label`` (-1 where hidden) and ``d/labelled`` under ``config.data.num_labels``;
# ``labelled_examples``: a stream of the labelled examples alone, ``labelled/d`` and ``labelled/d/label``.
FIELDS = ("index", "label", "labelled", "labelled_examples")
CONTRACT = ("spec", "init", "train_step", "map_fns", "sample")
_NOT_METHODS = ("common",)


@dataclasses.dataclass(frozen=True)
class Phase:
  """One stage of training: ``steps`` steps in which ``optimizer`` (an optax transformation over
  ``{name: params[name] for name in trainable}``) updates the networks ``trainable``."""
  name: str
  steps: int
  trainable: tuple[str, ...] = ()
  optimizer: Any = None


@dataclasses.dataclass(frozen=True)
class Spec:
  """What a method needs and how it trains.

  ``domains``: the domain names its batches carry; ``paired``: whether example i of one domain
  must show the same thing as example i of the others; ``fields``: extra batch fields
  (``FIELDS``); ``phases``: ordered training phases (empty: one phase of ``config.num_steps``)."""
  domains: tuple[str, ...]
  paired: bool = False
  fields: tuple[str, ...] = ()
  phases: tuple[Phase, ...] = ()


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What ``init`` may need of the training split: examples and classes per domain."""
  num_examples: dict[str, int]
  num_classes: dict[str, int] = dataclasses.field(default_factory=dict)


def known() -> list[str]:
  """The methods of this package."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_METHODS)


def get(name: str) -> types.ModuleType:
  """The method module ``config.method`` names, checked for the contract's functions."""
  path = name if "." in name else f"disen_jax.methods.{name}"
  if not name or name in _NOT_METHODS:
    raise ConfigError(f"config.method={name!r} is not a method; known: {known()}")
  try:
    module = importlib.import_module(path)
  except ModuleNotFoundError as e:
    if e.name is None or not path.startswith(e.name):
      raise  # a module the method imports is missing: a bug or an install problem
    raise ConfigError(f"config.method={name!r} is not a known method; known: {known()} (or a "
                      "dotted path to a module of your own)") from None
  missing = [f for f in CONTRACT if not callable(getattr(module, f, None))]
  if missing:
    raise ConfigError(f"config.method={name!r}: module {path} lacks {missing} of the method "
                      f"contract {list(CONTRACT)}")
  return module


def spec(method: types.ModuleType, config) -> Spec:
  """``method.spec(config)``, checked."""
  s = method.spec(config)
  where = f"config.method={config.method!r}"
  if not s.domains or len(set(s.domains)) != len(s.domains):
    raise ValueError(f"{where}: its Spec needs distinct domain names, got {s.domains}")
  unknown = set(s.fields) - set(FIELDS)
  if unknown:
    raise ValueError(f"{where}: unknown batch field(s) {sorted(unknown)} in its Spec; known: {FIELDS}")
  names = [p.name for p in s.phases]
  if len(set(names)) != len(names):
    raise ValueError(f"{where}: phase names repeat: {names}")
  for p in s.phases:
    if not isinstance(p.steps, int) or p.steps < 0:
      raise ConfigError(f"{where}: phase {p.name!r} has {p.steps!r} steps; expected an int >= 0")
  return s


_VOCABULARY = re.compile(r"(encode|decode)_(\w+)|translate_(\w+?)2(\w+)")


def offered_maps(method: types.ModuleType, config, domains) -> tuple[str, ...]:
  """The names of ``method``'s maps, checked against the vocabulary (``encode_<d>``,
  ``decode_<d>``, ``translate_<a>2<b>`` with ``d``, ``a``, ``b`` among ``domains``)."""
  names = tuple(method.map_fns(config))
  for name in names:
    if not name.startswith(("encode_", "decode_", "translate_")):
      continue  # a method-specific map
    m = _VOCABULARY.fullmatch(name)
    used = [d for d in (m.groups()[1:] if m else ()) if d is not None]
    if not m or any(d not in domains for d in used) or (m.group(3) and m.group(3) == m.group(4)):
      raise ValueError(f"config.method={config.method!r}: map {name!r} is not in the vocabulary "
                       f"encode_<d>, decode_<d>, translate_<a>2<b> over its domains {tuple(domains)}")
  return names


def translations(names) -> dict[str, tuple[str, str]]:
  """``{"a2b": ("a", "b")}`` for every ``translate_a2b`` among map ``names``."""
  out = {}
  for name in names:
    m = _VOCABULARY.fullmatch(name)
    if m and m.group(3):
      out[f"{m.group(3)}2{m.group(4)}"] = (m.group(3), m.group(4))
  return out


def maps(method: types.ModuleType, state, config) -> dict:
  """``method``'s maps bound to ``state`` and jitted (``common.bind_maps``)."""
  from disen_jax.methods import common  # pylint: disable=g-import-not-at-top
  return common.bind_maps(method.map_fns, state, config)
