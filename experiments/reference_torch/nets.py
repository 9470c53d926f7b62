"""``disen_jax.nn``'s ResNet translator and PatchGAN in PyTorch (NCHW), layer for layer.

Every layer is registered under its flax parameter name (``Conv_0``, ``ResBlock_3/Conv_1``,
``ConvTranspose_0``, ...), so ``load_flax`` copies a flax state by name. Two details follow flax
rather than torch's defaults, so that both compute the same numbers: instance norm's epsilon is
flax's 1e-6, and the stride-2 'SAME' transposed conv is ``lax.conv_transpose``'s (torch's
``ConvTranspose2d(k=3, padding=0)`` with the flipped kernel, cropped to twice the input size;
the CycleGAN reference's ``padding=1, output_padding=1`` places the kernel one pixel off from
it, at the same cost). Spectral norm is flax's: one power iteration on every call from the
stored ``u``, stored back only when ``update_stats`` (the cost of torch's own
``spectral_norm`` in training mode).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EPS = 1e-6  # flax.linen.InstanceNorm's epsilon


def _norm(x):
  return F.instance_norm(x, eps=EPS)


def _reflect(x, p: int):
  return F.pad(x, (p, p, p, p), mode="reflect")


class ConvTransposeSame(nn.ConvTranspose2d):
  """``lax.conv_transpose(x, k, (2, 2), "SAME")`` with a ``k x k`` kernel."""

  def __init__(self, cin: int, cout: int, k: int):
    pad_before = k - 1 if k < 3 else (k + 1) // 2  # lax's 'SAME' transposed padding, stride 2
    super().__init__(cin, cout, k, stride=2, padding=k - 1 - pad_before)

  def forward(self, x):
    return super().forward(x)[:, :, :2 * x.shape[2], :2 * x.shape[3]]


class ResBlock(nn.Module):

  def __init__(self, width: int):
    super().__init__()
    self.layers = nn.ModuleDict({"Conv_0": nn.Conv2d(width, width, 3), "Conv_1": nn.Conv2d(width, width, 3)})

  def forward(self, x):
    h = F.relu(_norm(self.layers["Conv_0"](_reflect(x, 1))))
    return x + _norm(self.layers["Conv_1"](_reflect(h, 1)))


class ResnetTranslator(nn.Module):
  """``disen_jax.nn.ResnetTranslator`` (``emit_after``: the R stream; ``inject_after``: the
  entangler, whose side inputs have ``4 * features`` channels)."""

  def __init__(self, in_channels: int, out_channels: int, features: int = 64, num_blocks: int = 9,
               emit_after: Sequence[int] = (), inject_after: Sequence[int] = ()):
    super().__init__()
    f, width = features, 4 * features
    self.emit_after, self.inject_after = tuple(emit_after), tuple(inject_after)
    self.last = max(self.emit_after) if self.emit_after else num_blocks
    layers = {"Conv_0": nn.Conv2d(in_channels, f, 7), "Conv_1": nn.Conv2d(f, 2 * f, 3, 2, 1),
              "Conv_2": nn.Conv2d(2 * f, 4 * f, 3, 2, 1)}
    for n, _ in enumerate(self.inject_after):
      layers[f"Conv_{3 + n}"] = nn.Conv2d(2 * width, width, 1)
    for i in range(self.last):
      layers[f"ResBlock_{i}"] = ResBlock(width)
    if not self.emit_after:
      layers["ConvTranspose_0"] = ConvTransposeSame(width, 2 * f, 3)
      layers["ConvTranspose_1"] = ConvTransposeSame(2 * f, f, 3)
      layers[f"Conv_{3 + len(self.inject_after)}"] = nn.Conv2d(f, out_channels, 7)
    self.layers = nn.ModuleDict(layers)

  def forward(self, x, side: Sequence[torch.Tensor] = ()):
    h = F.relu(_norm(self.layers["Conv_0"](_reflect(x, 3))))
    h = F.relu(_norm(self.layers["Conv_1"](h)))
    h = F.relu(_norm(self.layers["Conv_2"](h)))
    emitted, side = [], list(side)
    for i in range(self.last + 1):
      if i in self.inject_after:
        conv = self.layers[f"Conv_{3 + self.inject_after.index(i)}"]
        h = F.relu(_norm(conv(torch.cat([h, side.pop(0)], dim=1))))
      if i in self.emit_after:
        emitted.append(h)
      if i < self.last:
        h = self.layers[f"ResBlock_{i}"](h)
    if self.emit_after:
      return emitted
    h = F.relu(_norm(self.layers["ConvTranspose_0"](h)))
    h = F.relu(_norm(self.layers["ConvTranspose_1"](h)))
    return torch.tanh(self.layers[f"Conv_{3 + len(self.inject_after)}"](_reflect(h, 3)))


def _l2_normalize(x):
  return x * torch.rsqrt((x * x).sum() + 1e-12)  # flax's _l2_normalize


class SpectralConv(nn.Conv2d):
  """A conv whose kernel is divided by its spectral norm (flax ``nn.SpectralNorm``)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.register_buffer("u", torch.randn(1, self.out_channels))
    self.update_stats = False

  def forward(self, x):
    w = self.weight.reshape(self.out_channels, -1)
    with torch.no_grad():
      v = _l2_normalize(self.u @ w)
      u = _l2_normalize(v @ w.T)
      if self.update_stats:
        self.u.copy_(u)
    sigma = (v @ w.T @ u.T)[0, 0]
    return self._conv_forward(x, self.weight / sigma, self.bias)


class PatchGAN(nn.Module):
  """``disen_jax.nn.PatchGAN``: 4x4 convs, LeakyReLU(0.2), spectral or instance norm."""

  def __init__(self, in_channels: int, features: int = 64, num_layers: int = 3, norm: str = "spectral"):
    super().__init__()
    self.norm = norm
    conv = SpectralConv if norm == "spectral" else nn.Conv2d
    widths = [in_channels] + [features * min(2 ** i, 8) for i in range(num_layers + 1)] + [1]
    strides = [2] * num_layers + [1, 1]
    self.layers = nn.ModuleDict({f"Conv_{i}": conv(widths[i], widths[i + 1], 4, strides[i], 1)
                                 for i in range(num_layers + 2)})

  def forward(self, x, update_stats: bool = False):
    convs = list(self.layers.values())
    for i, layer in enumerate(convs):
      layer.update_stats = update_stats
      x = layer(x)
      if self.norm == "instance" and 0 < i < len(convs) - 1:
        x = _norm(x)
      if i < len(convs) - 1:
        x = F.leaky_relu(x, 0.2)
    return x


def _flat(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) or hasattr(v, "items"):
      out.update(_flat(v, f"{prefix}{k}/"))
    else:
      out[prefix + k] = np.asarray(v)
  return out


@torch.no_grad()
def load_flax(module: nn.Module, params, stats=None) -> None:
  """Copies flax ``params`` (and a PatchGAN's ``spectral_stats``) into ``module`` by name."""
  tensors = {}
  for name, sub in module.named_modules():
    if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d)):
      tensors[name.replace("layers.", "").replace(".", "/")] = sub
  flat = _flat(params)
  for path, sub in tensors.items():
    kernel = flat.pop(f"{path}/kernel")
    if isinstance(sub, nn.ConvTranspose2d):  # HWIO, flipped -> (in, out, h, w)
      weight = kernel[::-1, ::-1].transpose(2, 3, 0, 1)
    else:  # HWIO -> (out, in, h, w)
      weight = kernel.transpose(3, 2, 0, 1)
    sub.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
    sub.bias.copy_(torch.from_numpy(np.array(flat.pop(f"{path}/bias"))))
  if flat:
    raise ValueError(f"flax parameters without a torch layer: {sorted(flat)}")
  for values in (stats or {}).get("spectral_stats", {}).values():
    for key, value in values.items():
      if key.endswith("/u"):
        module.layers[key.split("/")[0]].u.copy_(torch.from_numpy(np.array(value)))
