"""Gradient tools shared by every method: freezing, gradient reversal, selective backprop.

* ``freeze(tree)``: ``stop_gradient`` on every leaf. A frozen network is still differentiable
  with respect to its *inputs* (gradients flow through it to whatever produced them), but its own
  parameters receive exactly zero gradient. This is the uncooperative trick of Harley et al.
* ``reverse_gradient(x, scale)``: identity forward, ``-scale * g`` backward (Ganin & Lempitsky).
* ``select(tree, trainable)``: selective backprop: freeze every top-level entry of a params dict
  that is not in ``trainable`` (Benaim & Wolf's shared layers).
"""
from __future__ import annotations

from typing import Any, Iterable

import jax
import jax.numpy as jnp

PyTree = Any


def freeze(tree: PyTree) -> PyTree:
  """Returns ``tree`` with ``stop_gradient`` applied to every leaf."""
  return jax.tree_util.tree_map(jax.lax.stop_gradient, tree)


def maybe_freeze(tree: PyTree, frozen) -> PyTree:
  """``freeze(tree)`` if ``frozen``, else ``tree``. ``frozen`` is a Python bool (static under jit)
  or a traced boolean scalar (e.g. ``step >= k``): then the values are ``tree``'s and the
  parameters' gradient is ``g`` or exactly 0, chosen at run time in the same compiled program."""
  if isinstance(frozen, bool):
    return freeze(tree) if frozen else tree
  return jax.tree_util.tree_map(lambda p: jnp.where(frozen, jax.lax.stop_gradient(p), p), tree)


@jax.custom_vjp
def _reverse(x, scale):
  return x


def _reverse_fwd(x, scale):
  return x, scale


def _reverse_bwd(scale, g):
  return (jax.tree_util.tree_map(lambda t: -scale * t, g), jnp.zeros_like(scale))


_reverse.defvjp(_reverse_fwd, _reverse_bwd)


def reverse_gradient(x: PyTree, scale: float = 1.0) -> PyTree:
  """Gradient reversal: forward identity, backward multiplies the cotangent by ``-scale``."""
  return _reverse(x, jnp.asarray(scale, jnp.float32))


def select(params: dict, trainable: Iterable[str]) -> dict:
  """Selective backprop: entries of ``params`` whose key is not in ``trainable`` are frozen."""
  trainable = set(trainable)
  unknown = trainable - set(params)
  if unknown:
    raise KeyError(f"select(): no params named {sorted(unknown)}; have {sorted(params)}")
  return {k: (v if k in trainable else freeze(v)) for k, v in params.items()}
