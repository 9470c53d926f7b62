"""Evaluators: ``config.evals`` names modules of this package, run at every evaluation on the
*test* split.

An evaluator module exposes:

* ``DEFAULTS``: its settings, ``config.eval.<name>.<field>`` in every config;
* ``needs(spec, config) -> Needs``: the maps it calls (``methods`` vocabulary), the test-split
  domains and ground-truth fields (``extras`` keys) it reads, whether the split must be paired;
  the engine checks them against the method and the data before anything compiles;
* ``evaluate(maps, test_ds, *, config, workdir, step) -> {metric: float}``; evaluators that draw
  figures write them under ``workdir/samples`` tagged with ``step``.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types

from disen_jax.errors import ConfigError

_NOT_EVALUATORS = ("metrics",)


@dataclasses.dataclass(frozen=True)
class Needs:
  maps: tuple[str, ...] = ()       # maps it calls
  optional: tuple[str, ...] = ()   # maps it uses when the method has them
  domains: tuple[str, ...] = ()    # test-split domains it reads
  fields: tuple[str, ...] = ()     # ground truth: test-split extras it reads
  paired: bool = False             # whether example i of every domain must show the same thing


def names() -> list[str]:
  """The evaluators of this package."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_EVALUATORS)


def get(name: str) -> types.ModuleType:
  if name not in names():
    raise ConfigError(f"config.evals names {name!r}, which is not an evaluator; known: {names()}")
  return importlib.import_module(f"disen_jax.evaluation.{name}")


def check(config, spec, offered_maps, test_ds) -> None:
  """Errors naming both sides when an evaluator of ``config.evals`` needs a map the method does
  not offer, or a domain, ground-truth field or pairing the test split lacks."""
  if len(set(config.evals)) != len(config.evals):
    raise ConfigError(f"config.evals={tuple(config.evals)} names an evaluator twice")
  for name in config.evals:
    needs = get(name).needs(spec, config)
    where = f"config.evals: evaluator {name!r}"
    missing = [m for m in needs.maps if m not in offered_maps]
    if missing:
      raise ConfigError(f"{where} needs map(s) {missing}; config.method={config.method!r} offers "
                        f"{sorted(offered_maps)}")
    missing = [d for d in needs.domains if d not in test_ds.domains]
    if missing:
      raise ConfigError(f"{where} needs test domain(s) {missing}; config.data.source="
                        f"{config.data.source!r} gives {sorted(test_ds.domains)}")
    missing = [f for f in needs.fields if f not in test_ds.extras]
    if missing:
      raise ConfigError(f"{where} needs the ground truth {missing}, which config.data.source="
                        f"{config.data.source!r} does not give")
    if needs.paired and not test_ds.paired:
      raise ConfigError(f"{where} needs paired test domains; config.data.source="
                        f"{config.data.source!r} gives unpaired ones")


def evaluate(maps: dict, config, test_ds, workdir: str | None, step: int | None = None
             ) -> dict[str, float]:
  """Every evaluator of ``config.evals`` on ``test_ds`` with the method's bound ``maps``; one
  flat dict of floats."""
  out = {}
  for name in config.evals:
    scores = get(name).evaluate(maps, test_ds, config=config, workdir=workdir, step=step)
    clash = sorted(set(scores) & set(out))
    if clash:
      raise ValueError(f"evaluator {name!r} reports {clash}, which an earlier evaluator reported too")
    out.update({k: float(v) for k, v in scores.items()})
  return out
