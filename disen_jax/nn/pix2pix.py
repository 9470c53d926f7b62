"""The pix2pix / DCGAN network family: 4x4 stride-2 convolutions down, 4x4 stride-2 transposed
convolutions up, N(0, 0.02) initialization, batch norm, leaky ReLU (0.2) on the way down and ReLU
on the way up. Cross-domain disentanglement (Gonzalez-Garcia et al.) uses them as the official
code has them; other methods import them from here.

* ``Down`` / ``Up``: the 4x4 stride-2 conv and transposed conv (``nn.Conv(features, (4, 4),
  strides=2, padding=1)`` / ``nn.ConvTranspose(..., padding="SAME")`` parameters).
* ``Encoder``: image -> (S, E): ``num_down`` ``Down`` convs with ``features * min(2^i, 8)``
  channels, every one but the first preceded by a leaky ReLU and followed by batch norm; S is the
  last conv's normalized output (``H/2^num_down x W/2^num_down x 8*features`` at
  ``num_down >= 4``), E a dense layer (``exclusive_dim`` outputs) on the leaky-ReLU'd activations
  of the second-to-last conv. ``shared_norm="position"`` normalizes every position of S over the
  batch alone (``cross_domain``'s doc says why).
* ``Decoder``: (S, E) -> image, E tiled over S's grid and concatenated (``s=None``: E alone over a
  ``spatial`` grid); optional Gaussian noise on its input in training; ``num_down`` ``Up``
  convs, each preceded by a ReLU, all but the last followed by batch norm, the first two by
  dropout; tanh output. No skip connections.
* ``Critic``: a conditional critic, (input, image) -> one score: ``Down`` convs (no
  normalization, leaky ReLU) down to 4x4, then a dense layer.

Every module takes ``impl`` (``config.model.conv_impl``, ``convs.IMPLS``).
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from disen_jax.errors import ConfigError
from disen_jax.nn.convs import Conv, ConvTranspose

INIT = nn.initializers.normal(0.02)
SHARED_NORMS = ("channel", "position")


def Down(features: int, impl: str = "lax") -> nn.Conv:  # pylint: disable=invalid-name
  return Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), kernel_init=INIT, impl=impl)


def Up(features: int, impl: str = "lax") -> ConvTranspose:  # pylint: disable=invalid-name
  return ConvTranspose(features, (4, 4), impl=impl, kernel_init=INIT)


def batch_norm(train: bool, momentum: float, axis=-1) -> nn.BatchNorm:
  """pix2pix's batch norm: scale ~ N(1, 0.02); running averages for evaluation."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5, axis=axis,
                      scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d))


def widths(num_down: int) -> list[int]:
  """Channel multipliers of the ``num_down`` stages: ``min(2^i, 8)``."""
  return [min(2 ** i, 8) for i in range(num_down)]


class Encoder(nn.Module):
  """Image -> (S [N, H/2^num_down, W/2^num_down, features * min(2^(num_down-1), 8)],
  E [N, exclusive_dim])."""
  features: int = 64
  num_down: int = 5
  exclusive_dim: int = 8
  bn_momentum: float = 0.9
  shared_norm: str = "channel"  # the batch norm giving S: "channel" or "position"
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if self.num_down < 2:
      raise ConfigError(f"config.model.num_down={self.num_down} must be >= 2")
    if self.shared_norm not in SHARED_NORMS:
      raise ConfigError(f"config.model.shared_norm={self.shared_norm!r}: expected one of {SHARED_NORMS}")
    size = 2 ** self.num_down
    if x.shape[1] % size or x.shape[2] % size:
      raise ConfigError(f"images of {x.shape[1]}x{x.shape[2]} px cannot go through "
                        f"config.model.num_down={self.num_down} stride-2 convs: the size must be a "
                        f"multiple of {size}")
    mults = widths(self.num_down)
    h = Down(self.features * mults[0], self.impl)(x)
    for i, mult in enumerate(mults[1:], start=1):
      last = i == self.num_down - 1
      if last:
        pre_exclusive = nn.leaky_relu(h, 0.2)
      axis = (1, 2, 3) if last and self.shared_norm == "position" else -1
      h = batch_norm(train, self.bn_momentum, axis)(Down(self.features * mult, self.impl)(nn.leaky_relu(h, 0.2)))
    e = nn.Dense(self.exclusive_dim, name="exclusive")(pre_exclusive.reshape(len(x), -1))
    return h, e


class Decoder(nn.Module):
  """(S, E) -> image: E tiled over S's grid and concatenated (``s=None``: E alone, tiled over
  ``spatial``)."""
  out_channels: int
  features: int = 64
  num_down: int = 5
  dropout: float = 0.5
  noise_std: float = 0.0
  bn_momentum: float = 0.9
  impl: str = "lax"

  @nn.compact
  def __call__(self, s, e, *, spatial: tuple[int, int] | None = None, train: bool = False):
    if s is None:
      h = jnp.broadcast_to(e[:, None, None, :], (e.shape[0], *spatial, e.shape[-1]))
    else:
      tiled = jnp.broadcast_to(e[:, None, None, :], (*s.shape[:3], e.shape[-1]))
      h = jnp.concatenate([s, tiled], axis=-1)
    if train and self.noise_std > 0:
      h = h + self.noise_std * jax.random.normal(self.make_rng("noise"), h.shape, h.dtype)
    for i, mult in enumerate(reversed(widths(self.num_down)[:-1])):
      h = batch_norm(train, self.bn_momentum)(Up(self.features * mult, self.impl)(nn.relu(h)))
      if i < 2 and self.dropout > 0:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return jnp.tanh(Up(self.out_channels, self.impl)(nn.relu(h)))


class Critic(nn.Module):
  """Conditional critic: (input, image) -> one score per example."""
  features: int = 64
  impl: str = "lax"

  @nn.compact
  def __call__(self, cond, img):
    h = jnp.concatenate([cond, img], axis=-1)
    num_layers = max(1, int(math.log2(max(h.shape[1], 4) // 4)))  # down to 4x4
    for i in range(num_layers):
      h = nn.leaky_relu(Down(self.features * min(2 ** i, 8), self.impl)(h), 0.2)
    return nn.Dense(1)(h.reshape(len(h), -1))[:, 0]
