"""Convolutions with a CPU formulation, chosen by one switch, ``config.model.conv_impl``.

``impl``: ``"lax"`` is XLA's own convolution (the right one on GPUs and TPUs); ``"cpu"`` the
formulations below, which compute the same numbers (to float rounding, ``tests/test_convs.py``)
faster on XLA:CPU; ``"auto"`` is ``"cpu"`` on the CPU backend and ``"lax"`` elsewhere. Layers
take it as ``Conv(..., impl=...)`` (flax's ``nn.Conv`` with this module's
``conv_general_dilated`` as its convolution: same parameters, so a checkpoint loads into
either) and ``ConvTranspose(..., impl=...)``. Jit a step using them with the engine's XLA:CPU
options (``train.compiler_options``: XLA's convolution kernel, a memory-optimizing scheduler).

What pays on a 2-core CPU (jax 0.10; ``experiments/results/bench_layers`` and ``bench_steps``):

* Stride-2 'SAME' transposed convolutions as four stride-1 convolutions, one per output phase
  with only the taps it uses, then a depth-to-space shuffle (sub-pixel convolution): XLA's
  lhs-dilated form was 9-19x slower forward + backward (its kernel gradient took ~0.4 s per layer
  of the CycleGAN generator at 128 px, batch 1).
* Stride-2 convolutions (more than ``SMALL_CHANNELS`` inputs): XLA's forward, and the backward of
  four stride-1 convolutions, one per input phase (``conv_stride2``): XLA's own input gradient of
  a strided convolution is lhs-dilated, 2-3x slower.
* Small stride-1 convolutions (under ``SMALL_CONV_FLOPS`` or ``SMALL_CONV_POSITIONS``, e.g. every
  conv of the 32 px ``:cpu`` networks) and those with few output channels: one matmul,
  ``patches(x) @ W`` (im2col) or ``overlap_add(x @ W)`` (custom VJPs that keep only ``x``): a
  whole 32 px step ran 1.1-1.4x slower with XLA's convolutions.

Large stride-1 convolutions stay XLA's. (Winograd's F(4x4, 3x3) for the residual blocks bought
~10% at 128-256 px but doubled the lowered program and the compile time: removed, see the README's
speed section.)
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from disen_jax.errors import ConfigError

IMPLS = ("auto", "lax", "cpu")
SMALL_CHANNELS = 4  # "few channels" for the formulations below
# Stride-1 convolutions under this many FLOPs (forward) or output positions (batch x H x W) take
# the matmul formulations. Measured sides: the 32 px :cpu networks' convs (<= 19 MFLOP, or 72
# positions for the PatchGAN's 4x4 convs on a batch of 8: matmuls faster in the step) and the
# 128 px generators' (>= 67 MFLOP and >= 1024 positions: XLA's convolution 1.1-1.7x faster).
SMALL_CONV_FLOPS = 5e7
SMALL_CONV_POSITIONS = 256
_DN = ("NHWC", "HWIO", "NHWC")


def resolve_impl(impl: str) -> str:
  """``"auto"`` -> ``"cpu"`` on the CPU backend, else ``"lax"``; checks the name."""
  if impl not in IMPLS:
    raise ConfigError(f"config.model.conv_impl={impl!r}: expected one of {IMPLS}")
  if impl == "auto":
    return "cpu" if jax.default_backend() == "cpu" else "lax"
  return impl


def _offsets(k: int, flip: bool):
  return range(k - 1, -1, -1) if flip else range(k)


def _pad_full(x, kh: int, kw: int):
  """Zero-pads H and W by ``k - 1`` on both sides (turns a 'VALID' op into its adjoint's size)."""
  return jnp.pad(x, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)) + ((0, 0),) * (x.ndim - 3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def patches(x, kh: int, kw: int, flip: bool = False):
  """``[n, H, W, c] -> [n, H - kh + 1, W - kw + 1, kh * kw, c]``, ``p[h, w, (a, b)] = x[h + i_a,
  w + j_b]`` with ``i_a = a`` and ``j_b = b`` (``kh - 1 - a``, ``kw - 1 - b`` when ``flip``): the
  rows first, then the columns (14 slices for a 7x7 kernel, not 49: less to compile)."""
  n, h, w, c = x.shape
  ho, wo = h - kh + 1, w - kw + 1
  rows = jnp.stack([x[:, i:i + ho] for i in _offsets(kh, flip)], axis=3)  # [n, ho, W, kh, c]
  taps = jnp.stack([rows[:, :, j:j + wo] for j in _offsets(kw, flip)], axis=4)
  return taps.reshape(n, ho, wo, kh * kw, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def overlap_add(z, kh: int, kw: int, flip: bool = False):
  """``[n, H, W, kh * kw, c] -> [n, H - kh + 1, W - kw + 1, c]``,
  ``y[h, w] = sum_(a, b) z[h + i_a, w + j_b, (a, b)]`` (the taps as in ``patches``)."""
  n, h, w, _, c = z.shape
  ho, wo = h - kh + 1, w - kw + 1
  z = z.reshape(n, h, w, kh, kw, c)
  cols = sum(z[:, :, j:j + wo, :, b] for b, j in enumerate(_offsets(kw, flip)))  # [n, H, wo, kh, c]
  return sum(cols[:, i:i + ho, :, a] for a, i in enumerate(_offsets(kh, flip)))


def _patches_fwd(x, kh, kw, flip):
  return patches(x, kh, kw, flip), None


def _patches_bwd(kh, kw, flip, _, g):
  return (overlap_add(_pad_full(g, kh, kw), kh, kw, not flip),)


def _overlap_add_fwd(z, kh, kw, flip):
  return overlap_add(z, kh, kw, flip), None


def _overlap_add_bwd(kh, kw, flip, _, g):
  return (patches(_pad_full(g, kh, kw), kh, kw, not flip),)


patches.defvjp(_patches_fwd, _patches_bwd)
overlap_add.defvjp(_overlap_add_fwd, _overlap_add_bwd)


def conv_valid(x, kernel, impl: str = "lax"):
  """Stride-1 'VALID' convolution, NHWC x HWIO, in the formulation ``impl`` picks (on "cpu": the
  matmuls for a small one or one with few outputs, else XLA's)."""
  kh, kw, cin, cout = kernel.shape
  if resolve_impl(impl) == "cpu" and kh * kw > 1 and _small(x.shape, kernel.shape):
    return _conv_matmul(x, kernel.reshape(kh * kw, cin, cout), kh, kw)
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_DN)


def _small(x_shape, kernel_shape) -> bool:
  """Few output channels, or under ``SMALL_CONV_POSITIONS`` or ``SMALL_CONV_FLOPS``."""
  (n, h, w, _), (kh, kw, cin, cout) = x_shape, kernel_shape
  positions = n * (h - kh + 1) * (w - kw + 1)
  return (cout <= SMALL_CHANNELS or positions < SMALL_CONV_POSITIONS
          or 2 * positions * kh * kw * cin * cout < SMALL_CONV_FLOPS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_matmul(x, taps, kh: int, kw: int):
  """Stride-1 'VALID' convolution by one matmul (``taps``: ``[kh * kw, in, out]``): with few
  output channels ``overlap_add(x @ taps)``, else ``patches(x) @ taps``."""
  if taps.shape[2] <= SMALL_CHANNELS:
    return overlap_add(jnp.einsum("nhwc,tco->nhwto", x, taps), kh, kw)
  return jnp.einsum("nhwtc,tco->nhwo", patches(x, kh, kw), taps)


def _patches_t(x, kh: int, kw: int):
  """``patches`` laid out ``[kh * kw, c, n * H' * W']`` (built from the channels-first ``x``):
  the operand of a matmul contracting over positions, without transposing a large tensor."""
  x = x.transpose(3, 0, 1, 2)  # [c, n, H, W]
  ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
  rows = jnp.stack([x[:, :, i:i + ho] for i in range(kh)])  # [kh, c, n, ho, W]
  taps = jnp.stack([rows[..., j:j + wo] for j in range(kw)], axis=1)
  return taps.reshape(kh * kw, x.shape[0], -1)


def _conv_matmul_fwd(x, taps, kh, kw):
  return _conv_matmul(x, taps, kh, kw), (x, taps)


def _conv_matmul_bwd(kh, kw, residuals, g):
  """Keeps only ``x`` from the forward pass, not its patches (``kh * kw`` times its size). With
  few output channels, both gradients are matmuls with the (flipped) patches of the padded output
  gradient ``g``; else the input gradient is ``g @ taps^T`` overlap-added, and the kernel
  gradient one matmul with the patches of ``x`` if it has few channels (laid out for the matmul),
  else one matmul per tap on a shifted view of ``x``."""
  x, taps = residuals
  if taps.shape[2] <= SMALL_CHANNELS:
    g_patches = patches(_pad_full(g, kh, kw), kh, kw, True)  # [n, H, W, taps, out]
    return (jnp.einsum("nhwto,tco->nhwc", g_patches, taps),
            jnp.einsum("nhwc,nhwto->tco", x, g_patches))
  gx = overlap_add(_pad_full(jnp.einsum("nhwo,tco->nhwtc", g, taps), kh, kw), kh, kw, True)
  if taps.shape[1] <= SMALL_CHANNELS:
    return gx, jnp.einsum("tcm,mo->tco", _patches_t(x, kh, kw), g.reshape(-1, g.shape[3]))
  ho, wo = g.shape[1:3]
  return gx, jnp.stack([jnp.einsum("nhwc,nhwo->co", x[:, i:i + ho, j:j + wo], g)
                        for i in range(kh) for j in range(kw)])


_conv_matmul.defvjp(_conv_matmul_fwd, _conv_matmul_bwd)


def _transpose_phase_taps(k: int):
  """For a stride-2 'SAME' transposed conv with a ``k``-tap kernel (``lax.conv_transpose``'s
  padding): ``taps[a, d]`` is the kernel tap that output phase ``a`` (output ``2m + a``) applies
  to input ``m + d - lo`` (``k`` = no tap), and ``(lo, hi)`` the input padding."""
  pad_before = k - 1 if k < 3 else (k + 1) // 2  # lax's 'SAME' transposed padding, stride 2
  offsets = {(a, (a + t - pad_before) // 2): t
             for a in (0, 1) for t in range(k) if (a + t - pad_before) % 2 == 0}
  lo = -min(d for _, d in offsets)
  hi = max(d for _, d in offsets)
  taps = np.full((2, lo + hi + 1), k)
  for (a, d), t in offsets.items():
    taps[a, d + lo] = t
  return taps, (lo, hi)


def conv_transpose_phases(x, kernel):
  """``lax.conv_transpose(x, kernel, (2, 2), "SAME")`` (NHWC x HWIO, square kernel) as four
  stride-1 convolutions, one per output phase (output ``(2m + a, 2n + b)``), each with only the
  taps that phase uses (``conv_valid``), then depth-to-space. A 3x3 kernel's phases use
  4, 2, 2 and 1 taps: 9 tap products per input pixel, where one convolution giving the four
  phases at once computes 16 (36 for a 4x4 kernel, against 16); measured 1.7-2.3x faster forward
  + backward at 128 px than that single convolution (``experiments/results/bench_layers``)."""
  k, _, _, cout = kernel.shape
  taps, (lo, hi) = _transpose_phase_taps(k)
  xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
  n, h, w, _ = x.shape
  used = [[c for c in range(taps.shape[1]) if taps[a, c] < k] for a in (0, 1)]  # contiguous
  rows = []
  for a in (0, 1):
    phases = []
    for b in (0, 1):
      ra, rb = used[a], used[b]
      window = xp[:, ra[0]:ra[0] + h + len(ra) - 1, rb[0]:rb[0] + w + len(rb) - 1]
      phases.append(conv_valid(window, kernel[taps[a, ra]][:, taps[b, rb]], "cpu"))
    rows.append(jnp.stack(phases, axis=3))  # [n, h, w, b, cout]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, cout)  # [n, h, a, w, b, cout]


def _pad_hw(x, padding):
  """Zero-pads NHWC ``x``'s H and W by the explicit ``((lo, hi), (lo, hi))`` pairs."""
  return jnp.pad(x, ((0, 0), *padding, (0, 0)))


def conv(x, kernel, strides=(1, 1), padding="VALID", impl: str = "lax"):
  """``lax.conv_general_dilated`` (NHWC x HWIO; ``padding`` a string or explicit pairs) in the
  formulation ``impl`` picks: on "cpu", stride-1 convolutions by ``conv_valid``, stride-2 ones
  by ``conv_stride2`` (XLA's forward, the phases' backward) unless they have few inputs."""
  strides = tuple(strides)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding)
  padding = tuple(tuple(p) for p in padding)
  if strides == (1, 1):
    return conv_valid(_pad_hw(x, padding), kernel, impl)
  if strides == (2, 2) and resolve_impl(impl) == "cpu" and x.shape[-1] > SMALL_CHANNELS:
    return conv_stride2(x, kernel, padding)
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN)


def conv_stride2_phases(x, kernel, padding):
  """A stride-2 convolution as the sum of four stride-1 ones (``conv_valid``, "cpu"), one per
  input phase ``x[a::2, b::2]`` with the taps ``kernel[a::2, b::2]`` that meet it."""
  kh, kw = kernel.shape[:2]
  x = _pad_hw(x, padding)
  ho, wo = (x.shape[1] - kh) // 2 + 1, (x.shape[2] - kw) // 2 + 1
  out = 0.0
  for a in range(min(2, kh)):
    for b in range(min(2, kw)):
      taps = kernel[a::2, b::2]
      phase = x[:, a::2, b::2][:, :ho + taps.shape[0] - 1, :wo + taps.shape[1] - 1]
      out = out + conv_valid(phase, taps, "cpu")
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_stride2(x, kernel, padding):
  """A stride-2 convolution: XLA's forward; the backward of ``conv_stride2_phases``. With XLA's
  own gradient of a strided convolution (an lhs-dilated convolution for the input), the
  generator's first down stage (with its norm and ReLU) took 52 / 168 ms forward + backward at
  128 px, batch 1 / 4; with this, 25 / 125 (PyTorch: 30 / 109;
  ``experiments/results/bench_layers``, ``lax`` against ``cpu``)."""
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), padding, dimension_numbers=_DN)


def _conv_stride2_fwd(x, kernel, padding):
  return conv_stride2(x, kernel, padding), (x, kernel)


def _conv_stride2_bwd(padding, residuals, g):
  return jax.vjp(lambda x, k: conv_stride2_phases(x, k, padding), *residuals)[1](g)


conv_stride2.defvjp(_conv_stride2_fwd, _conv_stride2_bwd)


def conv_transpose(x, kernel, impl: str = "lax"):
  """``lax.conv_transpose(x, kernel, (2, 2), "SAME")`` in the formulation ``impl`` picks."""
  if resolve_impl(impl) == "cpu":
    return conv_transpose_phases(x, kernel)
  return jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=_DN)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, *,
                         impl: str = "lax"):
  """``lax.conv_general_dilated`` computed by ``conv`` in the formulation ``impl`` picks (plain
  2-D NHWC x HWIO convolutions; anything else, and ``impl="lax"``, goes to XLA's)."""
  plain = (lhs.ndim == 4 and tuple(lhs_dilation or (1, 1)) == (1, 1)
           and tuple(rhs_dilation or (1, 1)) == (1, 1) and feature_group_count == 1
           and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DN))
  if resolve_impl(impl) == "cpu" and plain:
    return conv(lhs, rhs, window_strides, padding, impl)
  return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                      dimension_numbers, feature_group_count, precision=precision)


def Conv(features: int, kernel_size, *, impl: str = "lax", **kwargs) -> nn.Conv:  # pylint: disable=invalid-name
  """flax's ``nn.Conv(features, kernel_size, **kwargs)`` (e.g. ``padding="REFLECT"``) computing
  its convolution in the formulation ``impl`` picks."""
  return nn.Conv(features, tuple(kernel_size),
                 conv_general_dilated=functools.partial(conv_general_dilated, impl=resolve_impl(impl)),
                 **kwargs)


class ConvTranspose(nn.Module):
  """``nn.ConvTranspose(features, kernel_size, strides=(2, 2), padding="SAME")`` (same
  parameters; flax has no hook for its convolution), computed by ``conv_transpose`` in the
  formulation ``impl`` picks."""
  features: int
  kernel_size: Sequence[int] = (3, 3)
  impl: str = "lax"
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, tuple(self.kernel_size) + (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return conv_transpose(x, kernel, self.impl) + bias
