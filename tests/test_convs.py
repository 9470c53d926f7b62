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

from disen_jax import train
from disen_jax.errors import ConfigError
from disen_jax.nn import Conv, ConvTranspose, Critic, Decoder, Encoder, PatchGAN, ResnetTranslator, convs
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
  _assert_same_layer(Conv(cout, (k, k), strides=(stride, stride), padding=padding, impl=impl),
                     nn.Conv(cout, (k, k), strides=(stride, stride), padding=padding), x)


@pytest.mark.parametrize("k", [3, 7])
def test_reflect_padded_conv_equals_padding_then_a_valid_conv(k):
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 10, 9, 5))
  padded = jnp.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="reflect")
  ours = Conv(6, (k, k), padding="REFLECT", impl="cpu")
  variables = ours.init(KEY, x)
  np.testing.assert_allclose(ours.apply(variables, x),
                             nn.Conv(6, (k, k), padding="VALID").apply(variables, padded), atol=1e-4)


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


class _DecoderOfX(nn.Module):
  """The pix2pix decoder on an input image's encoding (one module for the test below)."""
  impl: str

  @nn.compact
  def __call__(self, x):
    s, e = Encoder(4, num_down=3, exclusive_dim=2, impl=self.impl)(x)
    return Decoder(3, 4, num_down=3, dropout=0.0, impl=self.impl)(s, e)


@pytest.mark.parametrize("net", [
    functools.partial(ResnetTranslator, 3, 4, num_blocks=1),
    functools.partial(PatchGAN, 8, num_layers=2, norm="instance"),
    _DecoderOfX,
    functools.partial(Critic, 4),
])
def test_networks_compute_the_same_with_either_impl(net):
  x = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3), minval=-1, maxval=1)
  args = (x, x) if getattr(net, "func", None) is Critic else (x,)
  variables = net(impl="lax").init(KEY, *args)
  chex.assert_trees_all_equal(net(impl="cpu").init(KEY, *args), variables)  # checkpoints load either way

  def outputs_and_grads(impl):
    module = net(impl=impl)
    loss = lambda v: jnp.sum(jnp.sin(module.apply(v, *args)))
    fn = lambda v: (module.apply(v, *args), jax.grad(loss)(v))
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
  conv is XLA's convolution, which ``compiler_options`` keeps from YNNPACK (jax
  0.10's default, 3x slower) while YNNPACK keeps the reductions (XLA's own, 10x slower): flax's
  outputs and gradients."""
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 20, 20, 64))  # 256 positions, 52 MFLOP
  ours = Conv(64, (5, 5), padding="VALID", impl="cpu")
  reference = nn.Conv(64, (5, 5), padding="VALID")
  variables = reference.init(KEY, x)
  fn = lambda v: (ours.apply(v, x), jax.grad(_loss(ours))(v, x))
  compiled = jax.jit(fn, compiler_options=train.compiler_options()).lower(variables).compile()
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


@pytest.mark.parametrize("name", ["cyclegan_faces", "cross_domain_mnist"])
def test_bad_conv_impl_names_the_config_field_before_compiling(name):
  config = load_config(name)
  config.model.conv_impl = "fast"
  with pytest.raises(ConfigError, match=r"config\.model\.conv_impl='fast'"):
    train.check_config(config, 1)
