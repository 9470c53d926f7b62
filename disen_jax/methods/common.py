"""Pieces every method shares: the state pytree, optimizers and their schedule, phases, maps."""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from disen_jax import grad as gradlib
from disen_jax import losses


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


@functools.lru_cache(maxsize=None)
def _jitted_maps(build: Callable, config: ml_collections.FrozenConfigDict) -> dict:
  return {k: jax.jit(f) for k, f in build(config).items()}


def _on_one_device(a):
  if isinstance(a, jax.core.Tracer):  # maps built inside a transformation (e.g. eval_shape)
    return a
  if isinstance(a, jax.Array) and a.is_fully_replicated:
    return a.addressable_data(0)
  return jax.device_put(a, jax.local_devices()[0])


def bind_maps(build: Callable, state: State, config) -> dict:
  """A method's trained maps, bound to ``state``: ``build(config)`` returns ``{name: fn(params,
  stats, *args)}`` (a method's ``map_fns``). Each is jitted once per ``(build, config)`` with the parameters as arguments, so the evaluations of a run reuse one compiled
  program per map instead of recompiling it with the parameters baked in as constants. The maps
  run on this process's first device (the state is replicated; the inputs are host arrays of
  any size)."""
  fns = _jitted_maps(build, ml_collections.FrozenConfigDict(config))
  params, stats = jax.tree_util.tree_map(_on_one_device, (state.params, state.stats))
  return {k: functools.partial(f, params, stats) for k, f in fns.items()}


def start_phase(state: State, phase, *, config) -> State:
  """The default start of a phase (``methods.Phase``): its optimizer's state over its trainable
  networks, as ``opt_state[phase.name]``."""
  del config
  params = {n: state.params[n] for n in phase.trainable}
  return state.replace(opt_state={**state.opt_state, phase.name: phase.optimizer.init(params)})


def phase_grads(loss_fn: Callable, state: State, phase, /, *args, **kwargs):
  """``jax.value_and_grad(loss_fn, has_aux=True)`` over the phase's trainable networks only:
  ``loss_fn(params, *args, **kwargs)`` sees every network, the others frozen
  (``grad.select``). Returns ``((loss, aux), grads)``, ``grads`` over ``phase.trainable``."""
  def over_trainable(trainable):
    return loss_fn(gradlib.select({**state.params, **trainable}, phase.trainable), *args, **kwargs)
  return jax.value_and_grad(over_trainable, has_aux=True)(
      {n: state.params[n] for n in phase.trainable})


def phase_update(state: State, phase, grads) -> State:
  """One step of the phase's optimizer on its trainable networks (``grads`` over them)."""
  params = {n: state.params[n] for n in phase.trainable}
  params, opt_state = update(phase.optimizer, params, grads, state.opt_state[phase.name])
  return state.replace(params={**state.params, **params},
                       opt_state={**state.opt_state, phase.name: opt_state})


def step_keys(state: State, n: int):
  return jax.random.split(jax.random.fold_in(state.rng, state.step), n)


def update(opt: optax.GradientTransformation, params, grads, opt_state):
  updates, opt_state = opt.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def disc_apply(module, params, stats, x, *, update: bool = False):
  """Applies an adversary; returns ``(logits, stats)`` (stats advanced when ``update``)."""
  variables = {"params": params, **stats}
  if update and stats:
    out, new_stats = module.apply(variables, x, update_stats=True, mutable=list(stats))
    return out, dict(new_stats)
  return module.apply(variables, x), stats


def init_adversary(module, rng, x):
  """Returns ``(params, stats)`` of a freshly initialized adversary."""
  variables = dict(module.init(rng, x))
  return variables.pop("params"), variables


def lsgan_adversaries_step(nets, adv_params, stats, judged, opt, opt_state):
  """One least-squares update of several adversaries (one optimizer over all of them).

  ``judged`` maps an adversary name to ``(real, fake)`` examples; each adversary sees real and
  fake in one forward pass. Returns ``(params, stats, opt_state, metrics)`` with a metric
  ``d_<name>`` per adversary.
  """
  def loss_fn(params):
    new_stats, out = {}, {}
    for name, (real, fake) in judged.items():
      logits, new_stats[name] = disc_apply(
          nets[name], params[name], stats[name], jnp.concatenate([real, fake]), update=True)
      real_l, fake_l = jnp.split(logits, 2)
      out["d_" + name] = losses.lsgan_discriminator(real_logits=real_l, fake_logits=fake_l)
    return sum(out.values()), (out, new_stats)

  (_, (metrics, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(adv_params)
  params, opt_state = update(opt, adv_params, grads, opt_state)
  return params, new_stats, opt_state, metrics
