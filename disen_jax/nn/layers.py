"""Translators, discriminators and MLPs (Flax Linen).

* ``ResnetTranslator``: the Johnson et al. / CycleGAN ResNet generator: reflect-padded 7x7 conv,
  two stride-2 convs, residual blocks, two transposed convs, reflect-padded 7x7 conv, tanh; every
  hidden conv followed by instance norm and ReLU. Two optional hooks serve Harley et al.'s
  networks: ``emit_after`` stops before the transposed convs and returns the feature maps after
  the given numbers of residual blocks (the R stream); ``inject_after`` concatenates side feature
  maps at those points (the entangler), followed by a 1x1 conv back to the trunk width.
* ``PatchGAN``: the 70x70 PatchGAN (pix2pix / CycleGAN) with spectral normalization on every conv;
  the power-iteration vectors live in the ``spectral_stats`` collection.
* ``MLP``: a stack of dense layers.
``ResnetTranslator``, ``ResBlock`` and ``PatchGAN`` take ``impl`` (``config.model.conv_impl``,
``convs.IMPLS``): how their convolutions are computed (``convs``); the parameters and the
numbers are the same either way.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from disen_jax.nn.convs import Conv, ConvTranspose

SPECTRAL = "spectral_stats"


def _norm(x):
  return nn.InstanceNorm(use_bias=False, use_scale=False)(x)


class ResBlock(nn.Module):
  features: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    h = nn.relu(_norm(Conv(self.features, (3, 3), padding="REFLECT", impl=self.impl)(x)))
    h = Conv(self.features, (3, 3), padding="REFLECT", impl=self.impl)(h)
    return x + _norm(h)


class ResnetTranslator(nn.Module):
  """ResNet image translator. Input NHWC in [-1, 1], H and W multiples of 4."""
  out_channels: int
  features: int = 64
  num_blocks: int = 9
  emit_after: Sequence[int] = ()
  emit_channels: int = 0  # > 0: each emitted map through a 1x1 conv to this many channels
  inject_after: Sequence[int] = ()
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, side: Sequence[jnp.ndarray] = ()):
    if len(side) != len(self.inject_after):
      raise ValueError(f"expected {len(self.inject_after)} side inputs, got {len(side)}")
    f, impl = self.features, self.impl
    h = nn.relu(_norm(Conv(f, (7, 7), padding="REFLECT", impl=impl)(x)))
    for mult in (2, 4):
      h = Conv(f * mult, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), impl=impl)(h)
      h = nn.relu(_norm(h))
    width = 4 * f
    last = max(self.emit_after) if self.emit_after else self.num_blocks
    emitted, side = [], list(side)
    for i in range(last + 1):
      if i in self.inject_after:
        h = jnp.concatenate([h, side.pop(0)], axis=-1)
        h = nn.relu(_norm(Conv(width, (1, 1), impl=impl)(h)))
      if i in self.emit_after:
        emitted.append(Conv(self.emit_channels, (1, 1), impl=impl)(h) if self.emit_channels else h)
      if i < last:
        h = ResBlock(width, impl)(h)
    if self.emit_after:
      return emitted
    for mult in (2, 1):
      h = nn.relu(_norm(ConvTranspose(f * mult, (3, 3), impl=impl)(h)))
    h = Conv(self.out_channels, (7, 7), padding="REFLECT", impl=impl)(h)
    return jnp.tanh(h)


class PatchGAN(nn.Module):
  """70x70 PatchGAN. Returns a map of per-patch logits [N, h, w, 1].

  ``norm="spectral"``: spectral norm on every conv (Harley et al.); ``norm="instance"``: the
  CycleGAN reference (instance norm after every hidden conv but the first).
  """
  features: int = 64
  num_layers: int = 3
  norm: str = "spectral"
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    if self.norm not in ("spectral", "instance"):
      raise ValueError(f"PatchGAN norm={self.norm!r}: expected 'spectral' or 'instance'")

    def conv(h, feats, stride, normalize=True):
      layer = Conv(feats, (4, 4), strides=(stride, stride), padding=((1, 1), (1, 1)), impl=self.impl)
      if self.norm == "spectral":
        return nn.SpectralNorm(layer, collection_name=SPECTRAL)(h, update_stats=update_stats)
      h = layer(h)
      return _norm(h) if normalize else h

    h = nn.leaky_relu(conv(x, self.features, 2, normalize=False), 0.2)
    for i in range(1, self.num_layers):
      h = nn.leaky_relu(conv(h, self.features * min(2 ** i, 8), 2), 0.2)
    h = nn.leaky_relu(conv(h, self.features * min(2 ** self.num_layers, 8), 1), 0.2)
    return conv(h, 1, 1, normalize=False)


class MLP(nn.Module):
  """Dense layers with ``activation`` between them (none after the last)."""
  features: Sequence[int]
  activation: Callable = nn.relu

  @nn.compact
  def __call__(self, x, update_stats: bool = False):  # update_stats: same signature as PatchGAN
    del update_stats
    for i, f in enumerate(self.features):
      x = nn.Dense(f)(x)
      if i < len(self.features) - 1:
        x = self.activation(x)
    return x
