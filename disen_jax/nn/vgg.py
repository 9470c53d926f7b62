"""VGG16's convolutional stack, for perceptual losses, with weights from a file the user brings.

No pretrained network can be downloaded here, so the weights come from an ``.npz`` file with one
array per Keras layer name: ``block1_conv1/kernel`` (3, 3, in, out) and ``block1_conv1/bias``
(out,), ..., up to the deepest layer a loss uses (Keras' ``VGG16(include_top=False)`` weights,
exported with ``{f"{l.name}/kernel": l.kernel.numpy(), f"{l.name}/bias": l.bias.numpy()}``).
Inputs are preprocessed as Keras' VGG16 (``caffe`` mode: RGB -> BGR in 0..255 minus the
ImageNet channel means), from images in [-1, 1].
"""
from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from disen_jax.errors import ConfigError

BLOCKS = (2, 2, 3, 3, 3)  # convs per block
WIDTHS = (64, 128, 256, 512, 512)
# Keras VGG16 layer names in order (index = Keras' layer index - 1: "input" is layer 0).
LAYERS = tuple(n for b, convs in enumerate(BLOCKS, 1)
               for n in [f"block{b}_conv{i}" for i in range(1, convs + 1)] + [f"block{b}_pool"])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def convs_up_to(layer: str) -> tuple[str, ...]:
  """The conv layers whose weights ``layer``'s output needs."""
  if layer not in LAYERS:
    raise ConfigError(f"VGG16 layer {layer!r} is not one of {LAYERS}")
  return tuple(n for n in LAYERS[:LAYERS.index(layer) + 1] if "conv" in n)


def vgg_features(weights: dict, x, layers) -> list:
  """The outputs of ``layers`` (Keras names) for images ``x`` [B, H, W, 3] in [-1, 1]."""
  h = (x[..., ::-1] + 1.0) * 127.5 - CAFFE_MEAN_BGR
  out, last = {}, max(LAYERS.index(l) for l in layers)
  for name in LAYERS[:last + 1]:
    if name.endswith("pool"):
      h = nn.max_pool(h, (2, 2), strides=(2, 2))
    else:
      h = nn.relu(_conv(h, weights[f"{name}/kernel"], weights[f"{name}/bias"]))
    out[name] = h
  return [out[l] for l in layers]


def _conv(h, kernel, bias):
  y = jax.lax.conv_general_dilated(h, jnp.asarray(kernel), (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y + jnp.asarray(bias)


@functools.lru_cache(maxsize=2)
def load_weights(path: str, layers: tuple[str, ...], field: str = "config.loss.perceptual_weights") -> dict:
  """The arrays of ``path`` that ``layers`` need, checked (errors name ``field`` and the file)."""
  if not path or not os.path.isfile(path):
    raise ConfigError(f"{field}={path!r}: no such file (an .npz of VGG16 weights; see disen_jax/nn/vgg.py)")
  try:
    with np.load(path) as f:
      arrays = {k: f[k] for k in f.files}
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"{field}={path!r}: cannot read it as an .npz: {e}") from e
  needed = sorted({n for l in layers for n in convs_up_to(l)}, key=LAYERS.index)
  weights, cin = {}, 3
  for name in needed:
    b = int(name[5]) - 1
    for part, shape in (("kernel", (3, 3, cin, WIDTHS[b])), ("bias", (WIDTHS[b],))):
      key = f"{name}/{part}"
      if key not in arrays:
        raise ConfigError(f"{field}={path!r} lacks {key!r} (layers {list(layers)} need "
                          f"{needed})")
      if arrays[key].shape != shape:
        raise ConfigError(f"{field}={path!r}: {key!r} has shape {arrays[key].shape}, expected {shape}")
      weights[key] = arrays[key].astype(np.float32)
    cin = WIDTHS[b]
  return weights
