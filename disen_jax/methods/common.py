"""Pieces every method shares: the state pytree, optimizers and their schedule."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class State:
  """Everything a run needs to continue exactly: a pytree (jit, shard, checkpoint, vmap)."""
  step: jax.Array            # int32 scalar
  rng: jax.Array             # raw uint32 PRNG key; per-step keys are fold_in(rng, step)
  params: dict[str, Any]     # network name -> params
  opt_state: dict[str, Any]  # optimizer name -> optax state
  stats: dict[str, Any]      # network name -> non-trainable collections (spectral norm, batch stats)
  history: dict[str, Any]    # name -> image history buffer


def schedule(optim, num_steps: int) -> optax.Schedule:
  """Learning rate held for ``hold_fraction`` of the run, then decayed linearly to zero."""
  hold = int(round(optim.hold_fraction * num_steps))
  decay = max(num_steps - hold, 1)
  return optax.join_schedules(
      [optax.constant_schedule(optim.lr), optax.linear_schedule(optim.lr, 0.0, decay)], [hold])


def optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(schedule(o, config.num_steps), b1=o.b1, b2=o.b2)


def step_keys(state: State, n: int):
  return jax.random.split(jax.random.fold_in(state.rng, state.step), n)


def update(opt: optax.GradientTransformation, params, grads, opt_state):
  updates, opt_state = opt.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def global_norm(tree) -> jax.Array:
  return optax.global_norm(tree) if jax.tree_util.tree_leaves(tree) else jnp.zeros(())
