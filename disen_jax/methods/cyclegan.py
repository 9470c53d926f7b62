"""CycleGAN (Zhu et al. 2017) with the reference implementation's defaults.

G: V -> C and F: C -> V are ResNet translators (9 blocks at 256 px, reflect padding, instance
norm); D_C and D_V are 70x70 PatchGANs with instance norm; least-squares GAN; cycle weight 10
in both directions; identity weight 0.5 (relative to the cycle weight: ``|G(c) - c|`` and
``|F(v) - v|`` weighted 5); one Adam(2e-4, b1=0.5) over both generators and one over both
discriminators; discriminators trained on a 50-image history; learning rate held for half the
run, then decayed linearly to zero.

In the uncooperative harness this is the cooperative baseline with no residual:
``translate_c2v`` ignores the reference it is given (a CycleGAN cannot take one).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from disen_jax import grad as gradlib
from disen_jax import history as historylib
from disen_jax import losses
from disen_jax import methods
from disen_jax.methods import common
from disen_jax.nn import PatchGAN, ResnetTranslator

GENERATORS = ("G", "F")
ADVERSARIES = ("D_C", "D_V")


def networks(config) -> dict:
  m = config.model
  impl = m.conv_impl
  return {
      "G": ResnetTranslator(m.c_channels, m.features, m.num_blocks, impl=impl),
      "F": ResnetTranslator(m.v_channels, m.features, m.num_blocks, impl=impl),
      "D_C": PatchGAN(m.disc_features, m.disc_layers, norm=m.disc_norm, impl=impl),
      "D_V": PatchGAN(m.disc_features, m.disc_layers, norm=m.disc_norm, impl=impl),
  }


def spec(config) -> methods.Spec:
  del config
  return methods.Spec(domains=("v", "c"))


def init(rng, config, batch, info=None) -> common.State:
  del info
  nets = networks(config)
  keys = jax.random.split(rng, 5)
  v, c = batch["v"][:1], batch["c"][:1]
  params, stats = {"G": nets["G"].init(keys[0], v)["params"], "F": nets["F"].init(keys[1], c)["params"]}, {}
  for k, name, x in ((keys[2], "D_C", c), (keys[3], "D_V", v)):
    params[name], stats[name] = common.init_adversary(nets[name], k, x)
  opt = common.optimizer(config)
  size = config.history_size
  return common.State(
      step=jnp.zeros((), jnp.int32), rng=keys[4], params=params,
      opt_state={"gen": opt.init({n: params[n] for n in GENERATORS}),
                 "adv": opt.init({n: params[n] for n in ADVERSARIES})},
      stats=stats,
      history={"c": historylib.init(size, c.shape[1:]), "v": historylib.init(size, v.shape[1:])})


def generator_loss(gen, state: common.State, batch, *, config):
  nets = networks(config)
  w = config.loss
  v, c = batch["v"], batch["c"]
  adv = gradlib.freeze({n: state.params[n] for n in ADVERSARIES})
  G = lambda x: nets["G"].apply({"params": gen["G"]}, x)
  F = lambda x: nets["F"].apply({"params": gen["F"]}, x)
  judge = lambda name, x: common.disc_apply(nets[name], adv[name], state.stats[name], x)[0]
  fake_c, fake_v = G(v), F(c)
  g_c = losses.lsgan_generator(fake_logits=judge("D_C", fake_c))
  g_v = losses.lsgan_generator(fake_logits=judge("D_V", fake_v))
  cyc_v = losses.l1(pred=F(fake_c), target=v)
  cyc_c = losses.l1(pred=G(fake_v), target=c)
  idt = losses.l1(pred=G(c), target=c) + losses.l1(pred=F(v), target=v) if w.identity else 0.0
  total = w.gan * (g_c + g_v) + w.cycle * (cyc_v + cyc_c) + w.cycle * w.identity * idt
  metrics = {"g_c": g_c, "g_v": g_v, "cycle_v": cyc_v, "cycle_c": cyc_c, "identity": jnp.asarray(idt)}
  return total, {"metrics": metrics, "fake_c": fake_c, "fake_v": fake_v}


def train_step(state: common.State, batch, *, config):
  nets = networks(config)
  opt = common.optimizer(config)
  gen = {n: state.params[n] for n in GENERATORS}
  (loss, aux), grads = jax.value_and_grad(generator_loss, has_aux=True)(gen, state, batch, config=config)
  gen, gen_opt = common.update(opt, gen, grads, state.opt_state["gen"])

  k_c, k_v = common.step_keys(state, 2)
  hist_c, fake_c = historylib.query(state.history["c"], aux["fake_c"], k_c)
  hist_v, fake_v = historylib.query(state.history["v"], aux["fake_v"], k_v)
  adv, new_stats, adv_opt, d_metrics = common.lsgan_adversaries_step(
      nets, {n: state.params[n] for n in ADVERSARIES}, state.stats,
      {"D_C": (batch["c"], fake_c), "D_V": (batch["v"], fake_v)}, opt, state.opt_state["adv"])
  metrics = {"loss_gen": loss, **aux["metrics"], **d_metrics,
             "lr": common.schedule(config.optim, config.num_steps)(state.step)}
  return state.replace(step=state.step + 1, params={**gen, **adv},
                       opt_state={"gen": gen_opt, "adv": adv_opt}, stats=new_stats,
                       history={"c": hist_c, "v": hist_v}), metrics


def map_fns(config) -> dict:
  """``translate_v2c(v, reference=None) = G(v)``; ``translate_c2v(c, reference=None) = F(c)``: a
  reference is ignored (CycleGAN has no residual to take from it)."""
  nets = networks(config)
  return {"translate_v2c": lambda p, st, v, reference=None: nets["G"].apply({"params": p["G"]}, v),
          "translate_c2v": lambda p, st, c, reference=None: nets["F"].apply({"params": p["F"]}, c)}


def sample(state: common.State, batch, *, config) -> dict:
  f = common.bind_maps(map_fns, state, config)
  n = min(len(batch["v"]), len(batch["c"]))
  v, c = batch["v"][:n], batch["c"][:n]
  fake_c, fake_v = f["translate_v2c"](v), f["translate_c2v"](c)
  return {"v": v, "G(v)": fake_c, "F(G(v))": f["translate_c2v"](fake_c),
          "c": c, "F(c)": fake_v, "G(F(c))": f["translate_v2c"](fake_v)}
