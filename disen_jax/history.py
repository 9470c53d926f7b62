"""Image history buffer (Shrivastava et al.; CycleGAN's ``ImagePool``), jittable and vmappable.

Discriminators see generated examples drawn from a buffer of past ones. CycleGAN's rule, per
example: while the buffer is not full, store it and return it; afterwards, with probability 1/2
return a random stored example and put the new one in its place, else return the new one.
The buffer is a plain dict of arrays in the training state. ``size == 0`` disables it: the pool
then holds no ``items`` array at all (a zero-size array cannot be checkpointed).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def init(size: int, example_shape, dtype=jnp.float32) -> dict:
  if size == 0:
    return {"count": jnp.zeros((), jnp.int32)}
  return {"items": jnp.zeros((size,) + tuple(example_shape), dtype), "count": jnp.zeros((), jnp.int32)}


def query(pool: dict, batch: jnp.ndarray, rng) -> tuple[dict, jnp.ndarray]:
  """Returns ``(new_pool, examples for the discriminator)``; ``batch`` is stop-gradiented."""
  batch = jax.lax.stop_gradient(batch)
  if "items" not in pool:  # size 0
    return pool, batch
  size = pool["items"].shape[0]
  n = batch.shape[0]
  k_swap, k_idx = jax.random.split(rng)
  fill_slot = pool["count"] + jnp.arange(n)
  fill = fill_slot < size
  swap = jnp.logical_and(~fill, jax.random.uniform(k_swap, (n,)) < 0.5)
  idx = jax.random.randint(k_idx, (n,), 0, size)
  shape = (n,) + (1,) * (batch.ndim - 1)
  out = jnp.where(swap.reshape(shape), pool["items"][idx], batch)
  slot = jnp.where(fill, fill_slot, jnp.where(swap, idx, size))  # ``size`` = no write
  items = pool["items"].at[slot].set(batch, mode="drop")
  return {"items": items, "count": jnp.minimum(pool["count"] + n, size)}, out
