"""Content transfer (Press, Galanti, Benaim & Wolf, Emerging Disentanglement in Auto-Encoder Based
Unsupervised Image Content Transfer, ICLR 2019).

Two unpaired domains: ``a`` (images without some content, e.g. faces without glasses) and ``b``
(with it). One auto-encoder serves both:

* ``E1``, the common encoder: ``num_down`` 4x4 stride-2 convs (``features * 2^i`` channels, at most
  ``code_channels``; the last two ``code_channels - sep``), each followed by instance norm and a
  leaky ReLU (0.2). Its code (``H/2^num_down x W/2^num_down x (code_channels - sep)``: 2x2x487
  at the paper's 128 px) must describe everything the two domains share.
* ``E2``, the separate encoder: the same convs with ``features * 2^i`` channels (at most
  ``4 * features``), the last ``sep`` (25 in the paper): the content only ``b`` has.
* ``G``, one decoder: ``num_down`` 4x4 stride-2 transposed convs from the concatenated codes
  (``code_channels`` channels) to the image, instance norm and ReLU after all but the last, tanh.
* ``D``, the domain-confusion discriminator on E1's flattened code: Dense(512), leaky ReLU, Dense(1).

Losses of one step (``config.loss``), as in the official code (oripress/ContentDisentanglement):

* reconstruction (mean squared error): ``|G(E1(a), 0) - a|^2 + |G(E1(b), E2(b)) - b|^2``. A images
  are decoded with their separate code zeroed, so ``G`` learns that an all-zero ``E2`` code means
  "no glasses"; nothing else but the separate code tells ``G`` to draw them, which is why E2 ends
  up holding the content and nothing else (the "emerging" disentanglement);
* domain confusion (weight ``loss.confusion = 0.001``): the binary cross-entropy of ``D`` on the
  common codes of both domains, labelled as ``b``'s (the official code's label flip): E1 learns
  to leave the domain, i.e. the glasses, out of the common code. ``D`` is frozen there
  (``grad.freeze``) and learns in its own step on the (frozen) codes with the true labels.

Both optimizers are Adam(2e-4, b1 = 0.5) with their gradients clipped to a global norm of
``optim.clip = 5`` (``torch.nn.utils.clip_grad_norm_``); the auto-encoder takes its step first,
then the discriminator on the codes of the updated encoder (the official order).

Trained maps: ``translate_a2b(a, reference=b)`` = ``G(E1(a), E2(b))`` adds the reference's content;
``translate_b2a(b)`` = ``G(E1(b), 0)`` removes it. Not taken from the official code: its later
versions add a 2-channel skip from E1's third layer to the decoder, which the paper does not have.
"""
from __future__ import annotations

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disen_jax import grad as gradlib
from disen_jax import losses
from disen_jax import methods
from disen_jax.errors import ConfigError
from disen_jax.methods import common
from disen_jax.nn import Down, Up

AUTOENCODER = ("E1", "E2", "G")


def _norm(x):
  return nn.InstanceNorm(use_bias=False, use_scale=False)(x)


class Encoder(nn.Module):
  """``len(widths)`` 4x4 stride-2 convs, each with instance norm and leaky ReLU (0.2)."""
  widths: tuple[int, ...]
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    for w in self.widths:
      x = nn.leaky_relu(_norm(Down(w, self.impl)(x)), 0.2)
    return x


class Decoder(nn.Module):
  """4x4 stride-2 transposed convs to ``widths``, instance norm and ReLU after all but the last;
  tanh output."""
  widths: tuple[int, ...]
  impl: str = "lax"

  @nn.compact
  def __call__(self, common_code, separate_code):
    x = jnp.concatenate([common_code, separate_code], axis=-1)
    for i, w in enumerate(self.widths):
      x = Up(w, self.impl)(x)
      if i < len(self.widths) - 1:
        x = nn.relu(_norm(x))
    return jnp.tanh(x)


class CodeDiscriminator(nn.Module):
  """E1's code, flattened -> Dense(hidden) -> leaky ReLU (0.2) -> one logit (domain ``b``)."""
  hidden: int = 512

  @nn.compact
  def __call__(self, code):
    x = nn.leaky_relu(nn.Dense(self.hidden)(code.reshape(code.shape[0], -1)), 0.2)
    return nn.Dense(1)(x)[:, 0]


def widths(config) -> dict[str, tuple[int, ...]]:
  """Output channels of every layer of E1, E2 and G (the official networks at ``features = 32``,
  ``code_channels = 512``, ``num_down = 6``)."""
  m = config.model
  n, f, code, sep = m.num_down, m.features, m.code_channels, m.sep
  return {"E1": tuple(min(f * 2 ** i, code) for i in range(n - 2)) + (code - sep,) * 2,
          "E2": tuple(min(f * 2 ** i, 4 * f) for i in range(n - 1)) + (sep,),
          "G": (code,) + tuple(min(f * 2 ** i, code) for i in reversed(range(n - 2)))
               + (config.data.channels,)}


def check_config(config) -> None:
  """Bad settings, named, before anything compiles."""
  m = config.model
  if not isinstance(m.sep, int) or not 0 < m.sep < m.code_channels:
    raise ConfigError(f"config.model.sep={m.sep!r} must be an int in (0, config.model.code_channels="
                      f"{m.code_channels}): the separate code takes sep of the code's channels and "
                      "the common code the rest")
  if not isinstance(m.num_down, int) or m.num_down < 2:
    raise ConfigError(f"config.model.num_down={m.num_down!r} must be an int >= 2")
  size = config.data.resolution // 2 ** m.num_down
  if size < 2 or config.data.resolution % 2 ** m.num_down:
    raise ConfigError(f"config.model.num_down={m.num_down} leaves a code of {size}x{size} at "
                      f"config.data.resolution={config.data.resolution}: it must divide the resolution "
                      "into a grid of at least 2x2 (instance norm of a 1x1 map is zero)")
  if config.loss.confusion < 0:
    raise ConfigError(f"config.loss.confusion={config.loss.confusion!r} must be >= 0")


def networks(config) -> dict[str, nn.Module]:
  w, impl = widths(config), config.model.conv_impl
  return {"E1": Encoder(w["E1"], impl), "E2": Encoder(w["E2"], impl), "G": Decoder(w["G"], impl),
          "D": CodeDiscriminator(config.model.disc_hidden)}


def _optimizers(config):
  """Adam for the auto-encoder (``optim.lr``) and for the discriminator (``optim.disc_lr``), each
  after clipping its gradients to a global norm of ``optim.clip``."""
  o = config.optim
  make = lambda lr: optax.chain(optax.clip_by_global_norm(o.clip), optax.adam(
      common.schedule(types.SimpleNamespace(lr=lr, hold_fraction=o.hold_fraction), config.num_steps),
      b1=o.b1, b2=o.b2))
  return make(o.lr), make(o.disc_lr)


# ----------------------------------------------------------------------------- state and step


def spec(config) -> methods.Spec:
  check_config(config)
  return methods.Spec(domains=("a", "b"))


def init(rng, config, batch, info=None) -> common.State:
  del info
  check_config(config)
  nets = networks(config)
  k1, k2, kg, kd, k_state = jax.random.split(rng, 5)
  x = batch["a"][:1]
  params = {"E1": nets["E1"].init(k1, x)["params"], "E2": nets["E2"].init(k2, x)["params"]}
  c1 = nets["E1"].apply({"params": params["E1"]}, x)
  c2 = nets["E2"].apply({"params": params["E2"]}, x)
  params["G"] = nets["G"].init(kg, c1, c2)["params"]
  params["D"] = nets["D"].init(kd, c1)["params"]
  ae_opt, d_opt = _optimizers(config)
  return common.State(step=jnp.zeros((), jnp.int32), rng=k_state, params=params,
                      opt_state={"ae": ae_opt.init({n: params[n] for n in AUTOENCODER}),
                                 "D": d_opt.init(params["D"])},
                      stats={}, history={})


def encode(nets, params, x):
  """``(E1(x), E2(x))``."""
  return (nets["E1"].apply({"params": params["E1"]}, x), nets["E2"].apply({"params": params["E2"]}, x))


def decode(nets, params, common_code, separate_code=None, *, config):
  """``G(common, separate)``; ``separate=None`` is the zero code of domain ``a``."""
  if separate_code is None:
    separate_code = jnp.zeros(common_code.shape[:-1] + (config.model.sep,), common_code.dtype)
  return nets["G"].apply({"params": params["G"]}, common_code, separate_code)


def confusion_loss(*, logits_a, logits_b, encoder_side: bool):
  """Binary cross-entropy of the code discriminator (label 1 = domain ``b``), summed over the two
  domains as the official code does. The encoder's side labels both domains ``b`` (the official
  code's label flip); the discriminator's the truth."""
  label_a = 1.0 if encoder_side else 0.0
  return (losses.bce_with_logits(logits=logits_a, labels=jnp.full_like(logits_a, label_a))
          + losses.bce_with_logits(logits=logits_b, labels=jnp.ones_like(logits_b)))


def autoencoder_loss(ae, disc, batch, *, config):
  """Reconstruction of both domains plus the weighted confusion term; ``disc`` is frozen."""
  nets = networks(config)
  p = {**ae, "D": gradlib.freeze(disc)}
  a, b = batch["a"], batch["b"]
  common_a, _ = encode(nets, p, a)
  common_b, separate_b = encode(nets, p, b)
  rec_a = losses.l2(pred=decode(nets, p, common_a, config=config), target=a)
  rec_b = losses.l2(pred=decode(nets, p, common_b, separate_b, config=config), target=b)
  total = rec_a + rec_b
  metrics = {"rec_a": rec_a, "rec_b": rec_b}
  if config.loss.confusion:
    d = lambda c: nets["D"].apply({"params": p["D"]}, c)
    conf = confusion_loss(logits_a=d(common_a), logits_b=d(common_b), encoder_side=True)
    total = total + config.loss.confusion * conf
    metrics["confusion_e"] = conf
  return total, {**metrics, "loss_ae": total, "codes": (common_a, common_b)}


def discriminator_loss(disc, codes, *, config):
  nets = networks(config)
  common_a, common_b = gradlib.freeze(codes)
  d = lambda c: nets["D"].apply({"params": disc}, c)
  logits_a, logits_b = d(common_a), d(common_b)
  loss = confusion_loss(logits_a=logits_a, logits_b=logits_b, encoder_side=False)
  acc = 0.5 * (jnp.mean(logits_a < 0) + jnp.mean(logits_b > 0))
  return loss, {"loss_d": loss, "d_accuracy": acc}


def train_step(state: common.State, batch, *, config):
  nets = networks(config)
  ae_opt, d_opt = _optimizers(config)
  ae = {n: state.params[n] for n in AUTOENCODER}
  (_, aux), grads = jax.value_and_grad(autoencoder_loss, has_aux=True)(
      ae, state.params["D"], batch, config=config)
  grad_norm = optax.tree.norm(grads)
  ae, ae_state = common.update(ae_opt, ae, grads, state.opt_state["ae"])
  aux.pop("codes")
  metrics = {**aux, "grad_norm_ae": grad_norm, "lr": common.schedule(config.optim, config.num_steps)(state.step)}
  disc, d_state = state.params["D"], state.opt_state["D"]
  if config.loss.confusion:
    codes = (encode(nets, ae, batch["a"])[0], encode(nets, ae, batch["b"])[0])  # the updated E1
    (_, d_metrics), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(disc, codes, config=config)
    disc, d_state = common.update(d_opt, disc, d_grads, d_state)
    metrics.update(d_metrics)
  return state.replace(step=state.step + 1, params={**ae, "D": disc},
                       opt_state={"ae": ae_state, "D": d_state}), metrics


# ----------------------------------------------------------------------------- trained maps


def map_fns(config) -> dict:
  """* ``encode_a(x)``, ``encode_b(x)`` -> ``(E1(x), E2(x))`` (the same encoders for both);
  * ``decode_a(common, separate=None)`` = ``G(common, 0)`` (an ``a`` image: the separate code is
    ignored), ``decode_b(common, separate)`` = ``G(common, separate)``;
  * ``translate_a2b(a, reference)`` = ``G(E1(a), E2(reference))``: ``a`` with the content of the
    ``b`` images ``reference`` (one for all, or one per image); required: without it there is no
    content to add;
  * ``translate_b2a(b, reference=None)`` = ``G(E1(b), 0)``: the content removed (reference ignored).
  """
  nets = networks(config)

  def translate_a2b(p, st, a, reference=None):
    del st
    if reference is None:
      raise ValueError("content_transfer translate_a2b needs reference images of domain b: the "
                       "content it adds is theirs (--reference=IMAGE)")
    separate = encode(nets, p, reference)[1]
    common_code = encode(nets, p, a)[0]
    separate = jnp.broadcast_to(separate, common_code.shape[:1] + separate.shape[1:])
    return decode(nets, p, common_code, separate, config=config)

  return {
      "encode_a": lambda p, st, x: encode(nets, p, x),
      "encode_b": lambda p, st, x: encode(nets, p, x),
      "decode_a": lambda p, st, c, s=None: decode(nets, p, c, config=config),
      "decode_b": lambda p, st, c, s: decode(nets, p, c, s, config=config),
      "translate_a2b": translate_a2b,
      "translate_b2a": lambda p, st, b, reference=None: decode(nets, p, encode(nets, p, b)[0], config=config),
  }


def sample(state: common.State, batch, *, config) -> dict:
  """Rows: a, its reconstruction, a with the content of b; b, its reconstruction, b without it."""
  f = common.bind_maps(map_fns, state, config)
  n = min(len(batch["a"]), len(batch["b"]))
  a, b = batch["a"][:n], batch["b"][:n]
  common_b, separate_b = f["encode_b"](b)
  return {"a0 a": a, "a1 G(E1(a), 0)": f["translate_b2a"](a), "a2 G(E1(a), E2(b))": f["translate_a2b"](a, b),
          "b0 b": b, "b1 G(E1(b), E2(b))": f["decode_b"](common_b, separate_b),
          "b2 G(E1(b), 0)": f["translate_b2a"](b)}
