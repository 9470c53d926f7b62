"""Uncooperative re-entanglement (Harley et al., ICCV-W 2019), with its cooperative baseline.

Domains: V (the rich domain, e.g. photos) and C (the simple one, e.g. renders). V = (C, R): a
V example carries the content of a C example plus a residual R that C lacks.

* Disentangler D: v -> (c', r'). Two networks: a C stream (a full ResNet translator V -> C) and
  an R stream (the same trunk, stopped before the transposed convs, emitting its feature maps
  after the stride-2 convs and after 2 and 4 residual blocks). On vectors both streams are MLPs.
* Entangler E: (c, r) -> v'. The same translator C -> V, receiving the three R maps by
  concatenation at the same points (each followed by a 1x1 conv back to the trunk width; the
  paper does not say how the widths are reconciled). On vectors an MLP on concat(c, r).
* Adversaries A_C (on D's C output) and A_V (on E's output): PatchGANs with spectral norm (MLPs
  on vectors), least-squares GAN, trained on a history of generated examples.

Cycle 1: v -> D -> (c', r') -> E -> v''; l_v = |v - v''|, A_C judges c'.
Cycle 2: (c, r) -> E -> v' -> D -> (c'', r''); r = D_R(v) of the batch's real v (not
differentiated); l_c = |c - c''|, l_r = |r - r''|, A_V judges v'.
L = w_v l_v + w_c l_c + w_r l_r + L_GAN with weights 10, 10, 0.1, 1.

Beyond the paper (off by default; the faces ``:cpu`` variant sets identity 5):
``config.loss.identity`` adds w_id |D_C(c) - c| to cycle 1, CycleGAN's identity term for the
disentangler: a real render run through the C stream should come back unchanged. It trains D on
real input only, so the uncooperative rule holds.
``config.model.r_channels`` narrows each R map to that many channels (1x1 conv; 0: the trunk
width, as the paper); ``config.model.r_grid`` averages each R map to that many cells a side (E
repeats them back to the trunk's size; 0: full size, as the paper), so R cannot carry the face;
``config.model.disc_norm="instance"`` gives A_C and A_V CycleGAN's instance norm instead of the
paper's spectral norm. ``experiments/results/faces_cpu_recipe`` has the ablation of the last
two (neither helps).

Uncooperative (the paper): cycle 1 trains D only, cycle 2 trains E only; in each cycle the other
network is *frozen*: called with ``grad.freeze(params)``, so it passes gradients through to its
input but learns nothing. So each network learns only from real input. ``config.cooperative=True``
removes the freezing and is the only difference: the CycleGAN-like baseline.
``config.cooperative_steps = k`` (beyond the paper; 0 by default) trains cooperatively for the
first k steps and uncooperatively after: a warm-up, so that neither network starts by learning to
invert a random frozen partner. Measured on faces (``experiments/results/faces_cpu_recipe``): it
neither lifts the main job nor stops the later collapse.

``config.sequential=True`` updates D first and then computes E's gradient with the updated D
(the order the paper describes); ``False`` takes both gradients at the same parameters.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from disen_jax import grad as gradlib
from disen_jax import history as historylib
from disen_jax import losses
from disen_jax import methods
from disen_jax.errors import ConfigError
from disen_jax.methods import common
from disen_jax.nn import MLP, PatchGAN, ResnetTranslator

GENERATORS = ("D", "E")
ADVERSARIES = ("A_C", "A_V")


def _pool(x, grid: int):
  """Averages NHWC maps over ``grid`` x ``grid`` cells."""
  n, h, w, ch = x.shape
  return x.reshape(n, grid, h // grid, grid, w // grid, ch).mean(axis=(2, 4))


class Disentangler(nn.Module):
  c_stream: nn.Module
  r_stream: nn.Module
  r_grid: int = 0  # > 0: each R map averaged to r_grid x r_grid cells

  def __call__(self, v):
    r = self.r_stream(v)
    if self.r_grid:
      r = [_pool(m, self.r_grid) for m in r]
    return self.c_stream(v), r


class Entangler(nn.Module):
  net: nn.Module
  vector: bool

  def __call__(self, c, r):
    if self.vector:
      return self.net(jnp.concatenate([c, r], axis=-1))
    h, w = c.shape[1] // 4, c.shape[2] // 4  # the trunk's size, where R is injected
    r = [m if m.shape[1:3] == (h, w) else jnp.repeat(jnp.repeat(m, h // m.shape[1], 1), w // m.shape[2], 2)
         for m in r]
    return self.net(c, side=r)


def networks(config) -> dict[str, nn.Module]:
  m = config.model
  if m.kind == "mlp":
    leaky = functools.partial(nn.leaky_relu, negative_slope=0.2)
    return {
        "D": Disentangler(MLP((m.hidden, m.c_channels)), MLP((m.hidden, m.r_dim))),
        "E": Entangler(MLP((m.hidden, m.v_channels)), vector=True),
        "A_C": MLP((m.disc_hidden, 1), activation=leaky),
        "A_V": MLP((m.disc_hidden, 1), activation=leaky),
    }
  if m.kind == "resnet":
    emit, impl = tuple(m.r_emit_after), m.conv_impl
    translator = functools.partial(ResnetTranslator, features=m.features, impl=impl)
    return {
        "D": Disentangler(translator(m.c_channels, num_blocks=m.num_blocks),
                          translator(m.c_channels, emit_after=emit, emit_channels=m.r_channels),
                          r_grid=m.r_grid),
        "E": Entangler(translator(m.v_channels, num_blocks=m.num_blocks, inject_after=emit),
                       vector=False),
        "A_C": PatchGAN(m.disc_features, m.disc_layers, norm=m.disc_norm, impl=impl),
        "A_V": PatchGAN(m.disc_features, m.disc_layers, norm=m.disc_norm, impl=impl),
    }
  raise ConfigError(f"config.model.kind={m.kind!r}: expected 'mlp' or 'resnet'")


def spec(config) -> methods.Spec:
  if config.loss.identity and config.model.kind != "resnet":
    raise ConfigError("config.loss.identity needs image models (config.model.kind='resnet'): on "
                      "vectors C and V have different sizes")
  m = config.model
  if m.kind == "resnet" and m.r_grid:
    trunk = config.data.resolution // 4
    if m.r_grid < 0 or trunk % m.r_grid:
      raise ConfigError(f"config.model.r_grid={m.r_grid} must divide the residual maps' size, "
                        f"{trunk} (config.data.resolution / 4), or be 0")
  return methods.Spec(domains=("v", "c"))


def init(rng, config, batch, info=None) -> common.State:
  del info
  nets = networks(config)
  keys = jax.random.split(rng, 5)
  v, c = batch["v"][:1], batch["c"][:1]
  params, stats = {}, {}
  params["D"] = nets["D"].init(keys[0], v)["params"]
  _, r = nets["D"].apply({"params": params["D"]}, v)
  params["E"] = nets["E"].init(keys[1], c, r)["params"]
  for k, name, x in ((keys[2], "A_C", c), (keys[3], "A_V", v)):
    params[name], stats[name] = common.init_adversary(nets[name], k, x)
  opt = common.optimizer(config)
  adv = {n: params[n] for n in ADVERSARIES}
  size = config.history_size
  return common.State(
      step=jnp.zeros((), jnp.int32),
      rng=keys[4],
      params=params,
      opt_state={"D": opt.init(params["D"]), "E": opt.init(params["E"]), "A": opt.init(adv)},
      stats=stats,
      history={"c": historylib.init(size, c.shape[1:]), "v": historylib.init(size, v.shape[1:])},
  )


def _l1_tree(pred, target):
  pairs = zip(jax.tree_util.tree_leaves(pred), jax.tree_util.tree_leaves(target))
  terms = [losses.l1(pred=p, target=t) for p, t in pairs]
  return sum(terms) / len(terms)


def frozen_at(step, config):
  """Whether the other network is frozen in each cycle at ``step``: a Python bool, or a traced
  one during a cooperative warm-up (``config.cooperative_steps``)."""
  if config.cooperative:
    return False
  if config.cooperative_steps:
    return step >= config.cooperative_steps
  return True


def cycle_losses(gen_params, state: common.State, batch, *, config):
  """The two cycles' losses as functions of ``gen_params = {"D": .., "E": ..}``.

  Returns ``(cycle1, cycle2, aux)``. Freezing follows ``config.cooperative``: uncooperative
  cycle 1 sees E frozen and cycle 2 sees D frozen. Adversaries are never trained here.
  """
  nets = networks(config)
  w = config.loss
  frozen = frozen_at(state.step, config)
  v, c = batch["v"], batch["c"]
  adv = gradlib.freeze({n: state.params[n] for n in ADVERSARIES})

  def judge(name, x):
    return common.disc_apply(nets[name], adv[name], state.stats[name], x)[0]

  # Cycle 1: v -> D -> E.
  d1, e1 = gen_params["D"], gradlib.maybe_freeze(gen_params["E"], frozen)
  c1, r1 = nets["D"].apply({"params": d1}, v)
  v_rec = nets["E"].apply({"params": e1}, c1, r1)
  l_v = losses.l1(pred=v_rec, target=v)
  g_c = losses.lsgan_generator(fake_logits=judge("A_C", c1))
  cycle1 = w.v * l_v + w.gan * g_c
  if w.identity:  # beyond the paper: D_C(c) = c on real renders (still only real input for D)
    l_id = losses.l1(pred=nets["D"].apply({"params": d1}, c, method=lambda m, x: m.c_stream(x)), target=c)
    cycle1 = cycle1 + w.identity * l_id

  # Cycle 2: (c, r) -> E -> D, with r the residual of the batch's real v.
  d2, e2 = gradlib.maybe_freeze(gen_params["D"], frozen), gen_params["E"]
  r = jax.lax.stop_gradient(r1)
  v_fake = nets["E"].apply({"params": e2}, c, r)
  c_rec, r_rec = nets["D"].apply({"params": d2}, v_fake)
  l_c = losses.l1(pred=c_rec, target=c)
  l_r = _l1_tree(r_rec, r)
  g_v = losses.lsgan_generator(fake_logits=judge("A_V", v_fake))
  cycle2 = w.c * l_c + w.r * l_r + w.gan * g_v

  metrics = {"l_v": l_v, "l_c": l_c, "l_r": l_r, "g_c": g_c, "g_v": g_v}
  if w.identity:
    metrics["l_id"] = l_id
  return cycle1, cycle2, {"metrics": metrics, "fake_c": c1, "fake_v": v_fake}


def train_step(state: common.State, batch, *, config):
  nets = networks(config)
  opt = common.optimizer(config)

  def total(gen_params):
    cycle1, cycle2, aux = cycle_losses(gen_params, state, batch, config=config)
    return cycle1 + cycle2, aux

  grad_fn = jax.value_and_grad(total, has_aux=True)
  gen = {n: state.params[n] for n in GENERATORS}
  opt_state = dict(state.opt_state)
  if config.sequential:
    _, grads = grad_fn(gen)
    gen["D"], opt_state["D"] = common.update(opt, gen["D"], grads["D"], opt_state["D"])
    (loss, aux), grads = grad_fn(gen)
    gen["E"], opt_state["E"] = common.update(opt, gen["E"], grads["E"], opt_state["E"])
  else:
    (loss, aux), grads = grad_fn(gen)
    for n in GENERATORS:
      gen[n], opt_state[n] = common.update(opt, gen[n], grads[n], opt_state[n])

  k_c, k_v = common.step_keys(state, 2)
  hist_c, fake_c = historylib.query(state.history["c"], aux["fake_c"], k_c)
  hist_v, fake_v = historylib.query(state.history["v"], aux["fake_v"], k_v)

  adv, new_stats, opt_state["A"], d_metrics = common.lsgan_adversaries_step(
      nets, {n: state.params[n] for n in ADVERSARIES}, state.stats,
      {"A_C": (batch["c"], fake_c), "A_V": (batch["v"], fake_v)}, opt, opt_state["A"])

  metrics = {"loss_gen": loss, **aux["metrics"], **d_metrics,
             "lr": common.schedule(config.optim, config.num_steps)(state.step)}
  new_state = state.replace(
      step=state.step + 1, params={**gen, **adv}, opt_state=opt_state, stats=new_stats,
      history={"c": hist_c, "v": hist_v})
  return new_state, metrics


def residual_of(reference, n: int, r_fn, name: str):
  """The residual of ``reference`` (V images, one or ``n``) for ``n`` outputs of ``name``."""
  if reference is None:
    raise ConfigError(f"{name} of uncoop takes the residual (lighting, background) of a V image: "
                      "give one as the reference (--reference=IMAGE)")
  r = r_fn(reference)
  return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n, *a.shape[1:])), r)


def map_fns(config) -> dict:
  """``translate_v2c(v, reference=None)`` = D_C(v) (a reference is ignored); ``translate_c2v(c, reference)`` = E(c, D_R(reference)) (the
  reference's residual: one V image for all, or one per c); ``encode_v(v)`` = D(v) = (c', r');
  ``decode_v(c, r)`` = E(c, r); ``residual(v)`` = D_R(v)."""
  nets = networks(config)
  d = lambda p, v: nets["D"].apply({"params": p["D"]}, v)
  e = lambda p, c, r: nets["E"].apply({"params": p["E"]}, c, r)
  return {
      "translate_v2c": lambda p, st, v, reference=None: d(p, v)[0],  # C images have no style
      "translate_c2v": lambda p, st, c, reference=None: e(
          p, c, residual_of(reference, len(c), lambda v: d(p, v)[1], "translate_c2v")),
      "encode_v": lambda p, st, v: d(p, v),
      "decode_v": lambda p, st, c, r: e(p, c, r),
      "residual": lambda p, st, v: d(p, v)[1],
  }


def sample(state: common.State, batch, *, config) -> dict:
  """Rows of a translation grid: v, D_C(v), E(D(v)) and c, E(c, r_v), D_C(E(c, r_v))."""
  f = common.bind_maps(map_fns, state, config)
  v, c = batch["v"], batch["c"]
  n = min(len(v), len(c))
  v, c = v[:n], c[:n]
  v_fake = f["translate_c2v"](c, v)
  return {"v": v, "v2c": f["translate_v2c"](v), "v_cycle": f["decode_v"](*f["encode_v"](v)),
          "c": c, "c2v(c, r_v)": v_fake, "c_cycle": f["translate_v2c"](v_fake)}
