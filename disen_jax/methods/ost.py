"""One-shot unsupervised cross-domain translation (Benaim & Wolf, NeurIPS 2018).

Domains: ``b`` has many examples, ``a`` one (or a few, ``config.data.num_a``). Translation
``T_ab = G_b o G_s o E_s o E_a`` goes through layers shared by both domains (``E_s``, ``G_s``:
the ones far from the image) and layers of each domain's own (``E_a``/``G_a``, ``E_b``/``G_b``:
the ones close to the image).

* Phase I, ``autoencode`` (``config.phases.autoencode`` steps), on ``b`` only: a variational-style
  autoencoder ``b -> E_b -> E_s -> z -> G_s -> G_b``, trained with the reconstruction L1
  (``loss.rec``, x10), the official code's L2 penalty on the code ``mean(mu^2)`` (``loss.code``,
  0.1; ``z = mu + noise_std * N(0, 1)`` in training) and a least-squares GAN on the
  reconstructions (``loss.gan``) against ``D_b``.
* Phase II, ``one_shot`` (``config.phases.one_shot`` steps): ``E_a``, ``G_a`` are created
  (``start_phase``; copies of ``E_b``, ``G_b`` when ``model.a_init = "b"``, fresh otherwise) and
  the ``a`` examples, each augmented anew every step with dm-pix (``augment``: random horizontal
  flip, rotation up to ``augment.rotation`` degrees), train with ``L_rec_a`` + code penalty, the
  cycle ``a -> T_ab -> T_ba -> a`` (``loss.cycle``) and the GAN on ``T_ab(a)`` against ``D_b``; ``b``
  keeps its phase-I losses.
* **Selective backpropagation** (``config.selective``, the paper's contribution): the ``a``-side
  losses reach only the unshared layers (``A_SIDE``: ``E_a``, ``G_a``, ``E_b``, ``G_b``); ``E_s`` and
  ``G_s`` are frozen in them (``grad.select``), so the shared layers learn from ``b`` alone and the
  single ``a`` example cannot pull them into overfitting it. ``selective=False`` is the paper's
  ablation: every loss reaches every layer.

The networks are the DCGAN family (``nn.pix2pix``'s 4x4 stride-2 ``Down``/``Up`` convs) at 32 px:
``E_x`` one ``Down`` (``features``), ``E_s`` two (``2f``, ``4f``: the code is
``resolution/8 x resolution/8 x 4f``), ``G_s`` two ``Up`` (``2f``, ``f``), ``G_x`` one ``Up`` and tanh;
instance norm inside the shared layers. The discriminator is a DCGAN critic (``model.disc =
"dcgan"``: ``nn.Critic`` without a condition) or a PatchGAN (``"patchgan"``, for larger images).
Our reading, not the official code's layer list (a UNIT-based ResNet at 128 px+).

A run of phase II alone starts from a phase-I run's state with ``config.init_from`` (the
experiment trains phase I once and every ``a`` set from it); without it ``phases.autoencode`` must
be > 0 (``spec`` says so before anything compiles).
"""
from __future__ import annotations

import dm_pix as pix
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disen_jax import grad as gradlib
from disen_jax import losses
from disen_jax import methods
from disen_jax.errors import ConfigError
from disen_jax.methods import common
from disen_jax.nn import Critic, Down, PatchGAN, Up
from disen_jax.nn.layers import _norm as _inorm  # the library's instance norm (no scale, no bias)

SHARED = ("E_s", "G_s")
A_SIDE = ("E_a", "G_a", "E_b", "G_b")   # what the a-side losses update under selective backprop
PHASE_ONE = ("E_b", "E_s", "G_s", "G_b")
PHASE_TWO = ("E_a", "G_a") + PHASE_ONE
DISCS = ("dcgan", "patchgan")
A_INITS = ("b", "random")


# ----------------------------------------------------------------------------- networks


class DomainEncoder(nn.Module):
  """E_a / E_b: the image -> H/2 x W/2 x features."""
  features: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    return nn.leaky_relu(Down(self.features, self.impl)(x), 0.2)


class SharedEncoder(nn.Module):
  """E_s: -> the code mean ``mu``, H/8 x W/8 x 4 features."""
  features: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, h):
    h = nn.leaky_relu(_inorm(Down(2 * self.features, self.impl)(h)), 0.2)
    return Down(4 * self.features, self.impl)(h)


class SharedDecoder(nn.Module):
  """G_s: the code -> H/2 x W/2 x features."""
  features: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, z):
    h = nn.relu(_inorm(Up(2 * self.features, self.impl)(z)))
    return nn.relu(_inorm(Up(self.features, self.impl)(h)))


class DomainDecoder(nn.Module):
  """G_a / G_b: -> the image in [-1, 1]."""
  channels: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, h):
    return jnp.tanh(Up(self.channels, self.impl)(h))


class DCGANCritic(nn.Module):
  """The DCGAN critic on whole images: ``nn.Critic`` with an empty condition."""
  features: int
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, update_stats: bool = False):
    del update_stats
    return Critic(self.features, self.impl)(x[..., :0], x)


def networks(config) -> dict:
  m = config.model
  f, impl = m.features, m.conv_impl
  disc = (DCGANCritic(m.disc_features, impl) if m.disc == "dcgan"
          else PatchGAN(m.disc_features, m.disc_layers, norm="instance", impl=impl))
  return {"E_a": DomainEncoder(f, impl), "E_b": DomainEncoder(f, impl),
          "E_s": SharedEncoder(f, impl), "G_s": SharedDecoder(f, impl),
          "G_a": DomainDecoder(m.a_channels, impl), "G_b": DomainDecoder(m.b_channels, impl),
          "D_b": disc}


def _apply(nets, params, name, x):
  return nets[name].apply({"params": params[name]}, x)


def encode(nets, params, d: str, x):
  """The code mean ``mu = E_s(E_d(x))``."""
  return _apply(nets, params, "E_s", _apply(nets, params, f"E_{d}", x))


def decode(nets, params, d: str, z):
  """``G_d(G_s(z))``."""
  return _apply(nets, params, f"G_{d}", _apply(nets, params, "G_s", z))


# ----------------------------------------------------------------------------- spec, init


def _check(config) -> None:
  m = config.model
  if m.disc not in DISCS:
    raise ConfigError(f"config.model.disc={m.disc!r}: expected one of {DISCS}")
  if m.a_init not in A_INITS:
    raise ConfigError(f"config.model.a_init={m.a_init!r}: expected one of {A_INITS}")
  if m.a_init == "b" and m.a_channels != m.b_channels:
    raise ConfigError(f"config.model.a_init='b' copies E_b, G_b into E_a, G_a: needs "
                      f"config.model.a_channels ({m.a_channels}) == b_channels ({m.b_channels})")
  if not isinstance(config.selective, bool):
    raise ConfigError(f"config.selective={config.selective!r} must be a bool")
  if config.phases.one_shot and not config.phases.autoencode and not config.init_from:
    raise ConfigError("config.phases.autoencode=0 and config.init_from is empty: phase II "
                      "(one_shot) needs phase I's state; train phase I (autoencode > 0) or set "
                      "config.init_from to the workdir of a phase-I run")


def spec(config) -> methods.Spec:
  _check(config)
  o = config.optim
  adam = optax.adam(o.lr, b1=o.b1, b2=o.b2)
  return methods.Spec(domains=("a", "b"), phases=(
      methods.Phase("autoencode", config.phases.autoencode, trainable=PHASE_ONE, optimizer=adam),
      methods.Phase("one_shot", config.phases.one_shot, trainable=PHASE_TWO, optimizer=adam)))


def adversary_optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(o.lr, b1=o.b1, b2=o.b2)


def init(rng, config, batch, info=None) -> common.State:
  """Phase I's networks (``E_b``, ``E_s``, ``G_s``, ``G_b``, ``D_b``); ``E_a``, ``G_a`` come in
  phase II (``start_phase``)."""
  del info
  nets = networks(config)
  keys = jax.random.split(rng, 6)
  b = batch["b"][:1]
  params = {"E_b": nets["E_b"].init(keys[0], b)["params"]}
  h = nets["E_b"].apply({"params": params["E_b"]}, b)
  params["E_s"] = nets["E_s"].init(keys[1], h)["params"]
  z = nets["E_s"].apply({"params": params["E_s"]}, h)
  params["G_s"] = nets["G_s"].init(keys[2], z)["params"]
  params["G_b"] = nets["G_b"].init(keys[3], nets["G_s"].apply({"params": params["G_s"]}, z))["params"]
  params["D_b"], stats = common.init_adversary(nets["D_b"], keys[4], b)
  return common.State(step=jnp.zeros((), jnp.int32), rng=keys[5], params=params,
                      opt_state={"adv": adversary_optimizer(config).init({"D_b": params["D_b"]})},
                      stats={"D_b": stats}, history={})


def start_phase(state: common.State, phase, *, config) -> common.State:
  """Phase II creates ``E_a``, ``G_a``: copies of ``E_b``, ``G_b`` (``model.a_init = "b"``) or
  freshly initialized; then the phase's optimizer (``common.start_phase``)."""
  if phase.name == "one_shot":
    params = dict(state.params)
    if config.model.a_init == "b":
      params["E_a"], params["G_a"] = params["E_b"], params["G_b"]
    else:
      nets = networks(config)
      r, ch = config.data.resolution, config.model.a_channels
      k_e, k_g = jax.random.split(jax.random.fold_in(state.rng, 1 << 20))
      x = jnp.zeros((1, r, r, ch), jnp.float32)
      params["E_a"] = nets["E_a"].init(k_e, x)["params"]
      h = nets["G_s"].apply({"params": params["G_s"]}, encode(nets, params, "a", x))
      params["G_a"] = nets["G_a"].init(k_g, h)["params"]
    state = state.replace(params=params)
  return common.start_phase(state, phase, config=config)


# ----------------------------------------------------------------------------- losses


def augment(key, x, *, flip: bool, rotation: float):
  """Each image of ``x`` [N, H, W, C] flipped left-right with probability 1/2 (``flip``) and
  rotated by an angle drawn from U[-rotation, rotation] degrees (dm-pix, edge pixels repeated)."""
  k_flip, k_rot = jax.random.split(key)
  n = x.shape[0]
  if flip:
    x = jax.vmap(pix.random_flip_left_right)(jax.random.split(k_flip, n), x)
  if rotation:
    angles = jnp.deg2rad(rotation) * jax.random.uniform(k_rot, (n,), minval=-1.0, maxval=1.0)
    x = jax.vmap(lambda img, a: pix.rotate(img, a, mode="nearest"))(x, angles)
  return x


def _judge(nets, params, stats, x):
  return common.disc_apply(nets["D_b"], params["D_b"], stats["D_b"], x)[0]


def _noisy(key, mu, std: float):
  return mu + std * jax.random.normal(key, mu.shape, mu.dtype)


def b_losses(params, stats, b, key, *, config):
  """Phase I's losses on ``b``: reconstruction, code penalty, GAN on the reconstruction.
  Returns ``(total, aux)``."""
  nets, w = networks(config), config.loss
  mu = encode(nets, params, "b", b)
  recon = decode(nets, params, "b", _noisy(key, mu, config.model.noise_std))
  terms = {"rec_b": losses.l1(pred=recon, target=b), "code_b": jnp.mean(jnp.square(mu)),
           "gan_b": losses.lsgan_generator(fake_logits=_judge(nets, params, stats, recon))}
  total = w.rec * terms["rec_b"] + w.code * terms["code_b"] + w.gan * terms["gan_b"]
  return total, {"metrics": terms, "fakes": recon}


def a_losses(params, stats, a, key, *, config):
  """Phase II's ``a``-side losses on (augmented) ``a``: reconstruction, code penalty, cycle
  ``a -> b -> a``, GAN on ``T_ab(a)``. With ``config.selective`` the shared layers are frozen in
  them (``grad.select``). Returns ``(total, aux)``."""
  nets, w, std = networks(config), config.loss, config.model.noise_std
  if config.selective:
    params = gradlib.select(params, [n for n in params if n not in SHARED])
  k_rec, k_cyc = jax.random.split(key)
  mu = encode(nets, params, "a", a)
  z = _noisy(k_rec, mu, std)
  recon, t_ab = decode(nets, params, "a", z), decode(nets, params, "b", z)
  back = decode(nets, params, "a", _noisy(k_cyc, encode(nets, params, "b", t_ab), std))
  terms = {"rec_a": losses.l1(pred=recon, target=a), "code_a": jnp.mean(jnp.square(mu)),
           "cycle_a": losses.l1(pred=back, target=a),
           "gan_ab": losses.lsgan_generator(fake_logits=_judge(nets, params, stats, t_ab))}
  total = (w.rec * terms["rec_a"] + w.code * terms["code_a"] + w.cycle * terms["cycle_a"]
           + w.gan * terms["gan_ab"])
  return total, {"metrics": terms, "fakes": t_ab}


def generator_loss(params, stats, batch, keys, *, config, phase):
  """The phase's loss over every generator network (``D_b`` is frozen by ``common.phase_grads``)."""
  loss, aux = b_losses(params, stats, batch["b"], keys[0], config=config)
  metrics, fakes = dict(aux["metrics"]), [aux["fakes"]]
  if phase.name == "one_shot":
    a = augment(keys[1], batch["a"], flip=config.augment.flip, rotation=config.augment.rotation)
    a_loss, a_aux = a_losses(params, stats, a, keys[2], config=config)
    loss, fakes = loss + a_loss, fakes + [a_aux["fakes"]]
    metrics.update(a_aux["metrics"])
  return loss, {"metrics": metrics, "fakes": fakes}


def train_step(state: common.State, batch, *, config, phase):
  nets = networks(config)
  keys = common.step_keys(state, 3)
  (loss, aux), grads = common.phase_grads(generator_loss, state, phase, state.stats, batch, keys,
                                          config=config, phase=phase)
  state = common.phase_update(state, phase, grads)
  fakes = jnp.concatenate(aux["fakes"])
  real = jnp.concatenate([batch["b"]] * len(aux["fakes"]))
  adv, stats, adv_opt, d_metrics = common.lsgan_adversaries_step(
      nets, {"D_b": state.params["D_b"]}, state.stats, {"D_b": (real, jax.lax.stop_gradient(fakes))},
      adversary_optimizer(config), state.opt_state["adv"])
  return state.replace(step=state.step + 1, params={**state.params, **adv}, stats=stats,
                       opt_state={**state.opt_state, "adv": adv_opt}), {
                           "loss_gen": loss, **aux["metrics"], **d_metrics}


# ----------------------------------------------------------------------------- maps, samples


def map_fns(config) -> dict:
  """``encode_<d>`` (the code mean), ``decode_<d>``, ``translate_a2b`` / ``translate_b2a``
  (through the code mean; a ``reference`` is ignored: OST has no style to take from one)."""
  nets = networks(config)
  translate = lambda src, dst: (lambda p, st, x, reference=None:
                                decode(nets, p, dst, encode(nets, p, src, x)))
  return {"encode_a": lambda p, st, x: encode(nets, p, "a", x),
          "encode_b": lambda p, st, x: encode(nets, p, "b", x),
          "decode_a": lambda p, st, z: decode(nets, p, "a", z),
          "decode_b": lambda p, st, z: decode(nets, p, "b", z),
          "translate_a2b": translate("a", "b"), "translate_b2a": translate("b", "a")}


def sample(state: common.State, batch, *, config) -> dict:
  f = common.bind_maps(map_fns, state, config)
  a, b = batch["a"], batch["b"]
  t_ab = f["translate_a2b"](a)
  return {"a": a, "T_ab(a)": t_ab, "T_ba(T_ab(a))": f["translate_b2a"](t_ab),
          "b": b, "G_b(E_b(b))": f["decode_b"](f["encode_b"](b)), "T_ba(b)": f["translate_b2a"](b)}
