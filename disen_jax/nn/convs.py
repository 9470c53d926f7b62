"""Convolutions with a CPU formulation: the layers of ``nn.Conv`` / ``nn.ConvTranspose`` (same
parameter names, shapes and initializers, so a checkpoint loads into either), computed on CPU in
the way that is fastest there.

Why (profiles on a 2-core CPU, jax 0.10, ``experiments/results/bench_layers`` and
``bench_steps``): jitted with ``methods.common.compiler_options()`` (XLA's own convolution
kernel, not YNNPACK's, jax 0.10's default), a large convolution runs as fast as PyTorch's
oneDNN (a 3x3 one at 256 channels, 32x32: ~100 GFLOP/s forward + backward; in YNNPACK: ~40).
Not so:

* Stride-2 transposed convolutions (lhs-dilated convolutions: their kernel gradients took ~0.4 s
  per layer of the CycleGAN generator at 128 px, batch 1).
* Small convolutions (under ``SMALL_CONV_FLOPS`` or ``SMALL_CONV_POSITIONS``, e.g. every conv
  of the 32 px ``:cpu`` networks): a whole step ran 1.1-1.4x slower with XLA's
  convolutions than with the matmuls below, though layer by layer they are as fast.
* Convolutions with few output channels (the 7x7 conv to RGB): 1.1-1.4x slower than
  ``overlap_add(x @ W)``.

The formulations:

* ``patches`` / ``overlap_add``: the two shift operations, each the other's adjoint (custom VJPs:
  XLA's autodiff of a stack of slices builds one full-size padded copy per tap, ~1 s for a 7x7
  kernel at 128 px). Rows, then columns: 14 slices for a 7x7 kernel, not 49 (compile time).
* A small stride-1 convolution is ``patches(x) @ W`` (im2col: one matmul contracting over
  ``taps x in``), or ``overlap_add(x @ W)`` when it has few output channels. Its VJP keeps only
  ``x``, not the patches, and takes each gradient as one matmul (``_conv_matmul_bwd``). A large
  one is XLA's convolution (3x3: Winograd's, below).
* A stride-2 'SAME' transposed convolution is four stride-1 convolutions, one per output phase
  with only the taps it uses, then a depth-to-space shuffle (sub-pixel convolution): 9-19x faster
  than XLA's; one convolution computing the four phases at once (zero taps included) was another
  1.7-2.3x slower.
* A stride-2 convolution (with more than ``SMALL_CHANNELS`` inputs) runs forward as XLA's and
  backward as four stride-1 convolutions, one per input phase with only its taps: XLA's
  gradient of a strided convolution is an lhs-dilated one, 2-3x slower.
* A large stride-1 3x3 convolution (the ResNet generators' blocks) is Winograd's F(4x4, 3x3)
  (F(2x2, 3x3) with few tiles, ``conv_winograd``): 2.25 products per output and channel pair
  where XLA's convolution computes 9; a residual block forward + backward 1.3x faster than
  with XLA's convolution (``experiments/results/bench_layers``).

``impl``: ``"lax"`` is the plain formulation (``lax.conv_general_dilated`` / ``lax.conv_transpose``,
the right one on accelerators); ``"cpu"`` the formulations above; ``"auto"`` is ``"cpu"`` when
JAX's default backend is the CPU and ``"lax"`` otherwise. All compute the same numbers to float
rounding (Winograd's: ~1e-5 relative; ``tests/test_convs.py``). Jit a step using them with
``methods.common.compiler_options()`` (a scheduler that does not keep the patches of every
layer alive at once; XLA's convolution kernel).
"""
from __future__ import annotations

import functools
import operator
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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
    raise ValueError(f"conv impl={impl!r}: expected one of {IMPLS}")
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
  matmuls for a small one or one with few outputs, else Winograd's for 3x3, else XLA's)."""
  kh, kw, cin, cout = kernel.shape
  cpu = resolve_impl(impl) == "cpu"
  if cpu and kh * kw > 1 and _small(x.shape, kernel.shape):
    return _conv_matmul(x, kernel.reshape(kh * kw, cin, cout), kh, kw)
  if cpu and (kh, kw) == (3, 3):
    return conv_winograd(x, kernel)
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


# Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, "Fast Algorithms for
# Convolutional Neural Networks", CVPR 2016): output tile m -> (input B^T, kernel G, output A^T).
_WINOGRAD = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]])),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]])),
}


def _combine(rows, matrix):
  """``[sum_j matrix[a, j] * rows[j] for each a]`` as adds (no products by 0 or 1)."""
  def term(c, r):
    return r if c == 1 else -r if c == -1 else float(c) * r
  return [functools.reduce(operator.add, [term(c, r) for c, r in zip(coefs, rows) if c != 0])
          for coefs in matrix]


def _apply_along(x, matrix, axis: int):
  """``matrix @ x`` along ``axis`` (``_combine`` of the slices of ``x`` along it)."""
  rows = [jax.lax.index_in_dim(x, j, axis, False) for j in range(matrix.shape[1])]
  return jnp.stack(_combine(rows, matrix), axis)


def conv_winograd(x, kernel, m: int | None = None):
  """Stride-1 'VALID' 3x3 convolution (NHWC x HWIO) by Winograd's F(m x m, 3 x 3): each m x m
  output tile from an (m + 2)^2 input tile, transformed (``B^T d B``) and multiplied
  elementwise by the transformed kernel (``G g G^T``), as ``(m + 2)^2`` matmuls contracting
  over the input channels, then transformed back (``A^T . A``): ``(m + 2)^2 / m^2`` products
  per output and input channel pair, not 9 (2.25 for m = 4, 4 for m = 2). The output is padded
  up to whole tiles, then cropped. ``m``: 4 when that gives at least ``SMALL_CONV_POSITIONS``
  tiles (the matmuls' rows), else 2 (fewer rows made F(4x4) slower than XLA's convolution).
  Relative error against a direct convolution: ~1e-5 (m = 4), ~2e-6 (m = 2) in float32."""
  n, h, w, c = x.shape
  ho, wo = h - 2, w - 2
  if m is None:
    m = 4 if n * -(-ho // 4) * -(-wo // 4) >= SMALL_CONV_POSITIONS else 2
  bt, g, at = _WINOGRAD[m]
  t = m + 2
  th, tw = -(-ho // m), -(-wo // m)
  x = jnp.pad(x, ((0, 0), (0, th * m - ho), (0, tw * m - wo), (0, 0)))

  def tiles(x, axis, count, at_axis):  # B^T along ``axis``: [.., H, ..] -> [t, .., count, ..]
    rows = [jax.lax.slice_in_dim(x, j, j + m * (count - 1) + 1, m, axis) for j in range(t)]
    return jnp.stack(_combine(rows, bt), at_axis)

  v = tiles(tiles(x, 1, th, 0), 3, tw, 1).reshape(t * t, n * th * tw, c)
  u = _apply_along(_apply_along(kernel, g, 0), g, 1).reshape(t * t, c, -1)
  y = jnp.einsum("tpc,tco->tpo", v, u).reshape(t, t, n, th, tw, -1)
  y = _apply_along(_apply_along(y, at, 0), at, 1)  # [m, m, n, th, tw, out]
  y = y.transpose(2, 3, 0, 4, 1, 5).reshape(n, th * m, tw * m, -1)
  return y[:, :ho, :wo]


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


def kernel_and_bias(module: nn.Module, kernel_size, cin: int, features: int,
                    kernel_init=nn.initializers.lecun_normal()):
  """A conv layer's ``kernel`` (HWIO) and ``bias`` parameters, named and initialized as flax's
  ``nn.Conv`` / ``nn.ConvTranspose`` (call from the layer's compact ``__call__``)."""
  kernel = module.param("kernel", kernel_init, tuple(kernel_size) + (cin, features))
  return kernel, module.param("bias", nn.initializers.zeros, (features,))


class Conv(nn.Module):
  """``nn.Conv(features, kernel_size, strides, padding)`` (same parameters and initializers),
  computed by ``conv`` in the formulation ``impl`` picks."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: str | Sequence[tuple[int, int]] = "SAME"
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    kernel, bias = kernel_and_bias(self, self.kernel_size, x.shape[-1], self.features)
    return conv(x, kernel, self.strides, self.padding, self.impl) + bias


class ConvTranspose(nn.Module):
  """``nn.ConvTranspose(features, kernel_size, strides=(2, 2), padding="SAME")`` (same
  parameters and initializers), computed by ``conv_transpose`` in the formulation ``impl`` picks."""
  features: int
  kernel_size: Sequence[int] = (3, 3)
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    kernel, bias = kernel_and_bias(self, self.kernel_size, x.shape[-1], self.features)
    return conv_transpose(x, kernel, self.impl) + bias
