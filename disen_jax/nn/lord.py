"""LORD's networks (Gabbay & Hoshen, ICLR 2020; the authors' TensorFlow code, avivga/lord):
a class-conditioned AdaIN generator and a convolutional encoder. Any class/content method with
a code per class and a code per image can use them.

* ``ClassModulation``: a class code -> the AdaIN scale and offset of every AdaIN layer (one
  dense layer per layer, ``2 * adain_dim`` outputs).
* ``AdaINGenerator``: a content code -> 3 dense layers (``8, 4, 1 x adain_dim`` maps of the
  initial size, leaky ReLU) -> ``adain_layers`` x [nearest upsample x2, conv3x3 ``adain_dim``,
  leaky ReLU, AdaIN with that layer's class parameters] -> conv5x5 ``out_features`` -> leaky
  ReLU -> conv7x7 to the image channels -> sigmoid. The image starts at
  ``resolution / 2^adain_layers`` on a side. The official output is a sigmoid in [0, 1]; the
  library's images are in [-1, 1], so the output is ``2 * sigmoid - 1``.
* ``ConvEncoder``: conv7x7 stride 1 (``features[0]``) then a conv4x4 stride 2 per further entry
  of ``features``, each with a leaky ReLU; flatten; dense layers of ``dense`` units with leaky
  ReLU; a final dense layer to ``out_dim`` (the official class and content encoders).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def adain(x, scale, offset, eps: float = 1e-7):
  """Adaptive instance norm: each channel of each image of ``x`` [B, H, W, C] normalized over
  its positions, then ``* scale + offset`` ([B, C] each). As the official layer, the standard
  deviation (not the variance) gets ``eps``."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  std = jnp.std(x, axis=(1, 2), keepdims=True)
  return (x - mean) / (std + eps) * scale[:, None, None, :] + offset[:, None, None, :]


class ClassModulation(nn.Module):
  """Class code [B, D] -> AdaIN parameters [B, layers, adain_dim, 2] (offset, scale)."""
  adain_layers: int
  adain_dim: int

  @nn.compact
  def __call__(self, class_code):
    per_layer = [nn.Dense(2 * self.adain_dim)(class_code) for _ in range(self.adain_layers)]
    return jnp.stack(per_layer, axis=1).reshape(
        class_code.shape[0], self.adain_layers, self.adain_dim, 2)


class AdaINGenerator(nn.Module):
  """(content code [B, D], AdaIN parameters [B, layers, adain_dim, 2]) -> images [B, R, R, C]
  in [-1, 1] (see the module docstring)."""
  resolution: int
  channels: int
  adain_layers: int = 4
  adain_dim: int = 256
  out_features: int = 64
  leak: float = 0.3

  @nn.compact
  def __call__(self, content, adain_params):
    act = lambda h: nn.leaky_relu(h, self.leak)
    side = self.resolution // 2 ** self.adain_layers
    if side < 1 or side * 2 ** self.adain_layers != self.resolution:
      raise ValueError(f"resolution {self.resolution} is not a multiple of 2^{self.adain_layers} "
                       "(the generator's upsamplings)")
    h = content
    for mult in (8, 4, 1):
      h = act(nn.Dense(side * side * self.adain_dim * mult)(h))
    h = h.reshape(h.shape[0], side, side, self.adain_dim)
    for i in range(self.adain_layers):
      b, hh, ww, c = h.shape
      h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), "nearest")
      h = act(nn.Conv(self.adain_dim, (3, 3), padding="SAME")(h))
      h = adain(h, scale=adain_params[:, i, :, 1], offset=adain_params[:, i, :, 0])
    h = act(nn.Conv(self.out_features, (5, 5), padding="SAME")(h))
    return 2.0 * nn.sigmoid(nn.Conv(self.channels, (7, 7), padding="SAME")(h)) - 1.0


class ConvEncoder(nn.Module):
  """Images [B, H, W, C] -> codes [B, out_dim] (see the module docstring)."""
  out_dim: int
  features: Sequence[int] = (64, 128, 256, 256, 256)
  dense: Sequence[int] = (256, 256)
  leak: float = 0.3

  @nn.compact
  def __call__(self, x):
    act = lambda h: nn.leaky_relu(h, self.leak)
    x = act(nn.Conv(self.features[0], (7, 7), padding="SAME")(x))
    for f in self.features[1:]:
      x = act(nn.Conv(f, (4, 4), strides=2, padding="SAME")(x))
    x = x.reshape(x.shape[0], -1)
    for d in self.dense:
      x = act(nn.Dense(d)(x))
    return nn.Dense(self.out_dim)(x)
