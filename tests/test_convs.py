"""The CPU formulations of ``disen_jax.nn.convs`` equal flax's layers: same parameters (names,
shapes, initial values), same outputs and gradients, in the modules and the methods."""
import functools
import re

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax.methods import common, cyclegan
from disen_jax.nn import Conv, ConvTranspose, PatchGAN, ResnetTranslator, convs
from tests.conftest import load_config

KEY = jax.random.PRNGKey(0)


def _loss(module):
  return lambda variables, x: jnp.sum(jnp.sin(module.apply(variables, x)))


def _assert_same_layer(ours, reference, x, atol=1e-4):
  """Same parameters at init, same outputs, same gradients (params and input)."""
  variables = reference.init(KEY, x)
  chex.assert_trees_all_equal(ours.init(KEY, x), variables)
  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=atol)
  grads = jax.grad(_loss(ours), argnums=(0, 1))(variables, x)
  ref_grads = jax.grad(_loss(reference), argnums=(0, 1))(variables, x)
  chex.assert_trees_all_close(grads, ref_grads, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("cin,cout,k,stride,padding", [
    (8, 3, 7, 1, "VALID"),            # few outputs: overlap-add
    (3, 8, 7, 1, "VALID"),            # few inputs: im2col
    (6, 1, 4, 1, ((1, 1), (1, 1))),   # the PatchGAN's last layer
    (5, 6, 3, 1, "SAME"),             # plain lax
    (6, 1, 1, 1, "SAME"),             # 1x1
    (3, 6, 4, 2, ((1, 1), (1, 1))),   # stride 2, few inputs: XLA's
    (6, 5, 4, 2, ((1, 1), (1, 1))),   # stride 2: the phases' backward
    (6, 5, 3, 2, "SAME"),
])
@pytest.mark.parametrize("impl", ["lax", "cpu"])
def test_conv_equals_flax_conv(cin, cout, k, stride, padding, impl):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 11, 9, cin))
  _assert_same_layer(Conv(cout, (k, k), (stride, stride), padding, impl=impl),
                     nn.Conv(cout, (k, k), strides=(stride, stride), padding=padding), x)


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("impl", ["lax", "cpu"])
def test_conv_transpose_equals_flax_conv_transpose(k, impl):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 6, 4))
  _assert_same_layer(ConvTranspose(7, (k, k), impl=impl),
                     nn.ConvTranspose(7, (k, k), strides=(2, 2), padding="SAME"), x)


@pytest.mark.parametrize("cin,cout,stride", [(3, 2, 1), (2, 3, 1), (6, 3, 2)])
def test_second_derivatives_equal_lax(cin, cout, stride):
  """The custom VJPs are themselves differentiable (e.g. for a gradient penalty)."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 9, cin))
  kernel = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (3, 3, cin, cout))
  conv = lambda x, impl: convs.conv(x, kernel, (stride, stride), "SAME", impl)

  def penalty(impl):
    inner = jax.grad(lambda x: jnp.sum(jnp.sin(conv(x, impl)) ** 2))
    return jax.grad(lambda x: jnp.sum(inner(x) ** 2))(x)

  np.testing.assert_allclose(penalty("cpu"), penalty("lax"), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_equals_a_direct_convolution(m):
  """F(2x2) and F(4x4), output sizes that are not whole tiles: outputs, gradients and second
  derivatives of a direct convolution."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 11, 8, 5))
  kernel = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (3, 3, 5, 6))
  direct = lambda x, k: convs.conv_valid(x, k, "lax")
  winograd = lambda x, k: convs.conv_winograd(x, k, m)
  np.testing.assert_allclose(winograd(x, kernel), direct(x, kernel), rtol=1e-4, atol=1e-4)

  def grads(conv):
    loss = lambda x, k: jnp.sum(jnp.sin(conv(x, k)) ** 2)
    penalty = lambda x, k: jnp.sum(jax.grad(loss)(x, k) ** 2)
    return jax.grad(loss, (0, 1))(x, kernel), jax.grad(penalty, (0, 1))(x, kernel)

  chex.assert_trees_all_close(jax.jit(lambda: grads(winograd))(), grads(direct), rtol=1e-4,
                              atol=1e-3)


def test_large_3x3_convs_are_winograd_with_flax_numbers():
  """Above the small-conv sizes a 3x3 stride-1 conv of the "cpu" formulation is Winograd's (no
  convolution in the compiled program) and computes flax's outputs and gradients."""
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 19, 18, 112))  # 272 positions, 61 MFLOP
  ours = Conv(112, (3, 3), padding="VALID", impl="cpu")
  _assert_same_layer(ours, nn.Conv(112, (3, 3), padding="VALID"), x, atol=1e-3)
  variables = ours.init(KEY, x)
  hlo = jax.jit(jax.grad(_loss(ours))).lower(variables, x).compile().as_text()
  assert " convolution(" not in hlo


@pytest.mark.parametrize("net", [
    functools.partial(ResnetTranslator, 3, 4, num_blocks=1),
    functools.partial(PatchGAN, 8, num_layers=2, norm="instance"),
])
def test_networks_compute_the_same_with_either_impl(net):
  x = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3), minval=-1, maxval=1)
  variables = net(impl="lax").init(KEY, x)
  chex.assert_trees_all_equal(net(impl="cpu").init(KEY, x), variables)  # checkpoints load either way

  def outputs_and_grads(impl):
    module = net(impl=impl)
    fn = lambda v: (module.apply(v, x), jax.grad(_loss(module))(v, x))
    return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0})(variables)  # numbers

  (out, grads), (ref_out, ref_grads) = outputs_and_grads("cpu"), outputs_and_grads("lax")
  np.testing.assert_allclose(out, ref_out, atol=1e-5)
  chex.assert_trees_all_close(grads, ref_grads, atol=5e-4, rtol=1e-4)


def _ynn_fused_opcodes(hlo: str) -> set[str]:
  """The HLO opcodes inside the compiled program's YNNPACK fusions."""
  opcodes = set()
  for called in re.findall(r'calls=(%[\w.-]+)[^\n]*"kind":"__ynn_fusion"', hlo):
    body = re.search(re.escape(called) + r" \(.*?\{\n(.*?)\n\}", hlo, re.S).group(1)
    opcodes |= set(re.findall(r"= \S+ ([a-z][\w-]*)\(", body))
  return opcodes


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="YNNPACK is XLA:CPU's")
def test_large_convs_go_to_xla_convolution_kernel_with_the_same_numbers():
  """Above ``SMALL_CONV_FLOPS`` and ``SMALL_CONV_POSITIONS`` the "cpu" formulation of a stride-1
  conv other than 3x3 is XLA's convolution, which ``compiler_options`` keeps from YNNPACK (jax
  0.10's default, 3x slower) while YNNPACK keeps the reductions (XLA's own, 10x slower): flax's
  outputs and gradients."""
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 20, 20, 64))  # 256 positions, 52 MFLOP
  ours = Conv(64, (5, 5), padding="VALID", impl="cpu")
  reference = nn.Conv(64, (5, 5), padding="VALID")
  variables = reference.init(KEY, x)
  fn = lambda v: (ours.apply(v, x), jax.grad(_loss(ours))(v, x))
  compiled = jax.jit(fn, compiler_options=common.compiler_options()).lower(variables).compile()
  fused = _ynn_fused_opcodes(compiled.as_text())
  assert "convolution" not in fused and "reduce" in fused  # the bias gradient
  # If this fails, a later jax changed its default: check whether the option is still needed.
  assert "convolution" in _ynn_fused_opcodes(jax.jit(fn).lower(variables).compile().as_text())
  out, grads = compiled(variables)
  ref_fn = lambda v: (reference.apply(v, x), jax.grad(_loss(reference))(v, x))
  ref_out, ref_grads = jax.jit(ref_fn, compiler_options={"xla_backend_optimization_level": 0})(
      variables)
  np.testing.assert_allclose(out, ref_out, atol=1e-4)
  chex.assert_trees_all_close(grads, ref_grads, atol=1e-3, rtol=1e-4)


def test_auto_impl_follows_the_backend():
  assert convs.resolve_impl("auto") == ("cpu" if jax.default_backend() == "cpu" else "lax")
  assert convs.resolve_impl("lax") == "lax"


def test_bad_conv_impl_names_the_config_field():
  config = load_config("cyclegan_faces")
  config.model.conv_impl = "fast"
  with pytest.raises(ValueError, match=r"config\.model\.conv_impl='fast'"):
    cyclegan.networks(config)
  with pytest.raises(ValueError, match=r"config\.model\.conv_impl"):
    common.conv_impl(config)
