"""Cross-domain disentanglement (Gonzalez-Garcia, van de Weijer & Bengio, NeurIPS 2018).

Paired domains X and Y (``batch["x"][i]`` pairs with ``batch["y"][i]``). Each image is encoded
into a *shared* part S (what both domains show) and an *exclusive* part E (what only its own
domain shows); translation keeps S and draws the other domain's exclusive part from noise.

Networks (names as in the paper; G: X -> Y, F: Y -> X), following the official TensorFlow code
(agonzgarc/cross-domain-disen):

* Encoders ``G_e`` (of X) and ``F_e`` (of Y): ``num_down`` convs 4x4 stride 2 with
  ``features * min(2^i, 8)`` channels; every conv but the first is preceded by a leaky ReLU (0.2)
  and followed by batch norm. S is the last conv's (normalized) output: 8x8x512 at 256 px with
  ``features=64, num_down=5``, i.e. H/2^num_down x W/2^num_down x 8*features in general. E is a
  dense layer (``exclusive_dim=8`` outputs) on the leaky-ReLU'd activations of the
  second-to-last conv ("fourth layer" at ``num_down=5``).
* Decoders ``G_d`` (to Y) and ``F_d`` (to X): input S concatenated with E (or the noise z) tiled
  over S's spatial grid; ``num_down`` transposed convs 4x4 stride 2, each preceded by a ReLU; all
  but the last followed by batch norm, the first two by dropout 0.5; tanh output. No skip
  connections (they would let the encoder bypass S and E).
* Exclusive decoders ``G_ex`` (E^X -> a Y image) and ``F_ex`` (E^Y -> an X image): the same
  decoder on E alone, tiled; E enters through a gradient-reversal layer (``grad.reverse_gradient``).
  They try to produce the other domain from the exclusive part alone; their critics
  ``D_x2y_ex`` / ``D_y2x_ex`` judge how well. The decoder learns to fool its critic while the
  encoder, receiving the reversed gradient, learns to leave nothing in E that would help: E
  keeps only what the other domain lacks.
* Critics ``D_x2y`` (judges Y images given X) and ``D_y2x``, and the two exclusive critics:
  conditional WGAN-GP critics on the image concatenated with its paired input: stride-2 4x4 convs
  (``disc_features * min(2^i, 8)`` channels, leaky ReLU 0.2, no normalization) down to 4x4, then a
  dense layer to one score; gradient penalty weight ``loss.gp = 10`` (``losses.wgan_gp_critic``).

Losses of one step (weights ``config.loss``, the official code's values):

* GAN (``gan = 1``): ``-D_x2y(x, G_d(S^X, z))``, ``-D_y2x(y, F_d(S^Y, z'))`` with z, z' ~ N(0, I).
* Exclusive GAN (``exclusive_gan = 0.1``): ``-D_x2y_ex(x, G_ex(GRL(E^X)))`` and the Y -> X one.
* Shared L1 (``shared = 100``): ``|S^X - S^Y|`` of each pair.
* Cross-domain autoencoders (``auto = 100``): ``|F_d(S^Y, E^X) - x| + |G_d(S^X, E^Y) - y|``: the
  X image is rebuilt from Y's shared part, so S^Y must carry everything X shares with Y.
* Latent reconstruction (``latent = 100``): the encoder of the generated domain applied to a
  translation gives back its inputs: ``|F_e(G_d(S^X, z)) - (S^X, z)|`` and the Y -> X twin.
* Noise N(0, ``model.noise_std = 0.1``) added to the input of G_d and F_d (S and tiled E or z) in
  training, where the official decoder adds it, so that the encoders cannot hide information in
  tiny values of S.

Ablations (``config.ablation``, one per row of the paper's Table 3): ``no_auto`` drops the
autoencoders, ``normal_auto`` uses plain ones (``F_d(S^X, E^X)``), ``no_grl`` feeds E to the
exclusive decoders without gradient reversal, ``no_noise`` sets the decoder noise to zero,
``no_shared_l1`` drops ``|S^X - S^Y|``, ``no_latent_recon`` drops the latent reconstruction.

One step: the four critics take one Adam step on fakes of the current generators, then the six
generator networks take one step against the updated critics (the official order: critics
first). Adam(2e-4, b1 = 0.5) throughout. As in the official code, every generator loss term has
its own Adam optimizer over the networks it trains (``LOSS_GROUPS``) and the updates of all terms
are applied together (``config.optim.per_loss=True``). Adam is invariant to the scale of its loss,
so in that mode the weights above only matter inside a term (X vs Y halves); what sets a term's
pull against the others is its learning rate, ``optim.lr`` times ``optim.term_lr[term]`` (1 for
every term in the official code; facades ``:cpu`` raises the shared L1's, see its config).
``per_loss=False`` minimizes the weighted sum with one Adam instead (the pix2pix convention;
cheaper: one backward pass instead of one per term).

The networks are the pix2pix / DCGAN family of ``disen_jax.nn.pix2pix``; ``config.model.conv_impl``
picks how their convolutions are computed (``nn.convs``).

Deviations from the official code, on purpose:

* The official Y -> X exclusive critic's gradient penalty is computed on the wrong tensors: it
  interpolates between ``targetsX`` (the Y images) and the exclusive Y -> X output and conditions
  on ``inputsX``, i.e. it reuses the X -> Y critic's tensors. Here every penalty interpolates
  between the real and the fake image of its own critic, conditioned on its own input.
* As the official code, the X and Y cross-domain autoencoders have separate Adams
  (``auto_x``, ``auto_y``), each over the networks its loss depends on: this matters, as the
  X -> Y halves share the encoders, and MNIST-CD's thin coloured strokes weigh little in an L1
  summed with MNIST-CB's coloured backgrounds. The GAN and exclusive GAN terms take one Adam
  over both directions (their halves touch disjoint networks, so one Adam equals two); the
  latent reconstruction (not in the official code) one Adam. The four critics share one Adam
  (disjoint parameters: the same as four).
* The official batch norm always normalizes with the statistics of the current batch, even at
  test time. Here training uses batch statistics and keeps running averages (``State.stats``,
  momentum ``model.bn_momentum``), which evaluation and the maps use: features of an image do not
  depend on the rest of its batch.
* The official code draws one z for both directions; here z and z' are independent.
* ``model.shared_norm``: the official batch norm that gives S normalizes each channel with
  statistics over the batch *and* S's positions (``"channel"``). On facades (S 8x8 at 64 px) we
  measured that the shared L1 then collapses S onto one spatial pattern common to all images:
  only 1-4% of S's variance was across images, and test Recall@1 on S was 19 / 31%. The cheapest
  way to make S^X = S^Y is an S that ignores the image, and a per-channel norm allows it, since
  its variance may come from the positions alone. ``"position"`` normalizes every position and
  channel of S over the batch alone (``nn.BatchNorm(axis=(1, 2, 3))``): each entry of S must then
  vary across the images of a batch, so S has to carry what a pair shares (97% of its variance
  across images). Its scale and offset are per position, so such an encoder works at its
  training resolution only. The two are the same when S is 1x1 (MNIST).
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disen_jax import grad as gradlib
from disen_jax import losses
from disen_jax import methods
from disen_jax import nn as nnlib
from disen_jax.errors import ConfigError
from disen_jax.methods import common
from disen_jax.nn.pix2pix import SHARED_NORMS, Critic, Decoder, Encoder

ENCODERS = ("G_e", "F_e")
DECODERS = ("G_d", "F_d")
EXCLUSIVE = ("G_ex", "F_ex")
GENERATORS = ENCODERS + DECODERS + EXCLUSIVE
CRITICS = ("D_x2y", "D_y2x", "D_x2y_ex", "D_y2x_ex")
# Loss term -> the networks its own Adam updates with ``config.optim.per_loss`` (the official
# code's variable lists: a term never moves a network it does not depend on anyway).
LOSS_GROUPS = {
    "gan": ("G_e", "G_d", "F_e", "F_d"),
    "exclusive_gan": ("G_e", "F_e", "G_ex", "F_ex"),
    "shared": ("G_e", "F_e"),
    "auto_x": ("G_e", "F_e", "F_d"),
    "auto_y": ("G_e", "F_e", "G_d"),
    "latent": ("G_e", "F_e", "G_d", "F_d"),
}
ABLATIONS = ("no_auto", "normal_auto", "no_grl", "no_noise", "no_shared_l1", "no_latent_recon")


def networks(config) -> dict[str, nn.Module]:
  m = config.model
  impl = nnlib.convs.resolve_impl(m.conv_impl)
  noise = 0.0 if config.ablation.no_noise else m.noise_std
  enc = functools.partial(Encoder, m.features, m.num_down, m.exclusive_dim, m.bn_momentum,
                          m.shared_norm, impl)
  dec = functools.partial(Decoder, features=m.features, num_down=m.num_down, dropout=m.dropout,
                          bn_momentum=m.bn_momentum, impl=impl)
  return {
      "G_e": enc(), "F_e": enc(),
      "G_d": dec(m.y_channels, noise_std=noise), "F_d": dec(m.x_channels, noise_std=noise),
      "G_ex": dec(m.y_channels), "F_ex": dec(m.x_channels),
      **{n: Critic(m.disc_features, impl) for n in CRITICS},
  }


def check_config(config) -> None:
  if config.model.shared_norm not in SHARED_NORMS:
    raise ConfigError(f"config.model.shared_norm={config.model.shared_norm!r}: expected one of "
                      f"{SHARED_NORMS}")
  unknown = set(config.ablation) - set(ABLATIONS)
  if unknown:
    raise ConfigError(f"config.ablation has unknown switch(es) {sorted(unknown)}; known: {ABLATIONS}")
  if config.ablation.no_auto and config.ablation.normal_auto:
    raise ConfigError("config.ablation.no_auto and config.ablation.normal_auto exclude each other")
  term_lr = dict(config.optim.term_lr)
  if set(term_lr) != set(LOSS_GROUPS):
    raise ConfigError(f"config.optim.term_lr={term_lr!r}: needs exactly the terms {tuple(LOSS_GROUPS)}")
  if not config.optim.per_loss and any(v != 1.0 for v in term_lr.values()):
    raise ConfigError("config.optim.term_lr scales the per-term Adams of config.optim.per_loss=True; "
                     "with per_loss=False set the loss weights (config.loss) instead")


# ----------------------------------------------------------------------------- applying


def _apply(net, params, stats, *args, train: bool, rng=None, **kwargs):
  """``net`` on ``args``; returns ``(out, stats)``, stats advanced when ``train``."""
  variables = {"params": params, **stats}
  if not train:
    return net.apply(variables, *args, train=False, **kwargs), stats
  rngs = dict(zip(("dropout", "noise"), jax.random.split(rng)))
  out, new = net.apply(variables, *args, train=True, rngs=rngs, mutable=list(stats), **kwargs)
  return out, {**stats, **new}


def grid_size(config, image_shape) -> tuple[int, int]:
  """Spatial size of S for images of ``image_shape`` (H, W, ...)."""
  size = 2 ** config.model.num_down
  return image_shape[0] // size, image_shape[1] // size


def exclusive_outputs(nets, gen, stats, e_x, e_y, spatial, *, config, train: bool, rng=None):
  """``(G_ex(GRL(E^X)), F_ex(GRL(E^Y)), stats)``: the other domain from the exclusive part alone.

  The gradient-reversal layer sits between E and the exclusive decoders (identity with
  ``config.ablation.no_grl``): the decoders learn normally, the encoders get the negated gradient.
  """
  rev = (lambda e: e) if config.ablation.no_grl else (
      lambda e: gradlib.reverse_gradient(e, config.loss.grl_scale))
  k1, k2 = jax.random.split(rng) if train else (None, None)
  out_y, s_g = _apply(nets["G_ex"], gen["G_ex"], stats["G_ex"], None, rev(e_x), spatial=spatial,
                      train=train, rng=k1)
  out_x, s_f = _apply(nets["F_ex"], gen["F_ex"], stats["F_ex"], None, rev(e_y), spatial=spatial,
                      train=train, rng=k2)
  return out_y, out_x, {"G_ex": s_g, "F_ex": s_f}


def _translations(nets, gen, stats, x, y, rng, *, config):
  """Encodes both domains and translates with fresh noise (training mode). Returns a dict."""
  keys = jax.random.split(rng, 7)
  (s_x, e_x), st_ge = _apply(nets["G_e"], gen["G_e"], stats["G_e"], x, train=True, rng=keys[0])
  (s_y, e_y), st_fe = _apply(nets["F_e"], gen["F_e"], stats["F_e"], y, train=True, rng=keys[1])
  z_x = jax.random.normal(keys[2], e_y.shape, e_y.dtype)  # stands in for E^Y in X -> Y
  z_y = jax.random.normal(keys[3], e_x.shape, e_x.dtype)
  fake_y, st_gd = _apply(nets["G_d"], gen["G_d"], stats["G_d"], s_x, z_x, train=True, rng=keys[4])
  fake_x, st_fd = _apply(nets["F_d"], gen["F_d"], stats["F_d"], s_y, z_y, train=True, rng=keys[5])
  ex_y, ex_x, st_ex = exclusive_outputs(nets, gen, stats, e_x, e_y, s_x.shape[1:3], config=config,
                                        train=True, rng=keys[6])
  new_stats = {"G_e": st_ge, "F_e": st_fe, "G_d": st_gd, "F_d": st_fd, **st_ex}
  return dict(s_x=s_x, e_x=e_x, s_y=s_y, e_y=e_y, z_x=z_x, z_y=z_y, fake_y=fake_y, fake_x=fake_x,
              ex_y=ex_y, ex_x=ex_x), new_stats


# ----------------------------------------------------------------------------- state and step


def spec(config) -> methods.Spec:
  check_config(config)
  return methods.Spec(domains=("x", "y"), paired=True)


def init(rng, config, batch, info=None) -> common.State:
  del info
  check_config(config)
  nets = networks(config)
  x, y = batch["x"][:1], batch["y"][:1]
  keys = jax.random.split(rng, len(GENERATORS) + len(CRITICS) + 1)
  params, stats = {}, {}

  def add(name, key, *args, **kwargs):
    variables = dict(nets[name].init(key, *args, **kwargs))
    params[name] = variables.pop("params")
    if name in GENERATORS:
      stats[name] = variables

  add("G_e", keys[0], x)
  add("F_e", keys[1], y)
  s_x, e_x = nets["G_e"].apply({"params": params["G_e"], **stats["G_e"]}, x)
  add("G_d", keys[2], s_x, e_x)
  add("F_d", keys[3], s_x, e_x)
  add("G_ex", keys[4], None, e_x, spatial=s_x.shape[1:3])
  add("F_ex", keys[5], None, e_x, spatial=s_x.shape[1:3])
  for k, (name, cond, img) in zip(keys[6:], (("D_x2y", x, y), ("D_y2x", y, x),
                                             ("D_x2y_ex", x, y), ("D_y2x_ex", y, x))):
    add(name, k, cond, img)
  opt = common.optimizer(config)
  if config.optim.per_loss:
    gen_opt = {term: opt.init({n: params[n] for n in nets_of}) for term, nets_of in LOSS_GROUPS.items()}
  else:
    gen_opt = opt.init({n: params[n] for n in GENERATORS})
  return common.State(
      step=jnp.zeros((), jnp.int32), rng=keys[-1], params=params,
      opt_state={"generators": gen_opt, "critics": opt.init({n: params[n] for n in CRITICS})},
      stats=stats, history={})


def critic_loss(crit, nets, batch, fakes, rng, *, config):
  """Sum of the four conditional WGAN-GP critic losses (``fakes`` are not differentiated)."""
  x, y = batch["x"], batch["y"]
  judged = {"D_x2y": (x, y, fakes["fake_y"]), "D_y2x": (y, x, fakes["fake_x"]),
            "D_x2y_ex": (x, y, fakes["ex_y"]), "D_y2x_ex": (y, x, fakes["ex_x"])}

  def critic_of(name, cond):
    return lambda img: nets[name].apply({"params": crit[name]}, cond, img)

  total, metrics = 0.0, {}
  for key, (name, (cond, real, fake)) in zip(jax.random.split(rng, len(judged)), judged.items()):
    loss, aux = losses.wgan_gp_critic(critic=critic_of(name, cond), real=real, fake=fake, rng=key,
                                      gp_weight=config.loss.gp)
    total += loss
    metrics[f"w_{name}"], metrics[f"gp_{name}"] = aux["wasserstein"], aux["gp"]
  return total, metrics


def active_terms(config) -> tuple[str, ...]:
  """The generator loss terms (keys of ``LOSS_GROUPS``) that the ablations of ``config`` keep."""
  ab = config.ablation
  dropped = {"shared": ab.no_shared_l1, "auto_x": ab.no_auto, "auto_y": ab.no_auto,
             "latent": ab.no_latent_recon}
  return tuple(t for t in LOSS_GROUPS if not dropped.get(t, False))


def generator_terms(gen, crit, stats, batch, rng, *, config):
  """The weighted generator loss terms of one step (those the ablations keep).

  Returns ``(terms, metrics, new_stats)``: ``terms`` maps a loss name (a key of ``LOSS_GROUPS``)
  to its weighted value; ``metrics`` holds the unweighted values.
  """
  nets = networks(config)
  w, ab = config.loss, config.ablation
  x, y = batch["x"], batch["y"]
  k_tr, k_ax, k_ay, k_rx, k_ry = jax.random.split(rng, 5)
  t, new_stats = _translations(nets, gen, stats, x, y, k_tr, config=config)
  score = lambda name, cond, img: jnp.mean(nets[name].apply({"params": crit[name]}, cond, img))

  gan = -score("D_x2y", x, t["fake_y"]) - score("D_y2x", y, t["fake_x"])
  ex_gan = -score("D_x2y_ex", x, t["ex_y"]) - score("D_y2x_ex", y, t["ex_x"])
  shared = losses.l1(pred=t["s_x"], target=t["s_y"])
  kept = active_terms(config)
  terms = {"gan": w.gan * gan, "exclusive_gan": w.exclusive_gan * ex_gan}
  metrics = {"g_gan": gan, "g_exclusive_gan": ex_gan, "shared_l1": shared}
  if "shared" in kept:
    terms["shared"] = w.shared * shared

  if "auto_x" in kept:
    s_for_x, s_for_y = (t["s_x"], t["s_y"]) if ab.normal_auto else (t["s_y"], t["s_x"])
    auto_x, _ = _apply(nets["F_d"], gen["F_d"], stats["F_d"], s_for_x, t["e_x"], train=True, rng=k_ax)
    auto_y, _ = _apply(nets["G_d"], gen["G_d"], stats["G_d"], s_for_y, t["e_y"], train=True, rng=k_ay)
    metrics["auto_l1_x"] = losses.l1(pred=auto_x, target=x)
    metrics["auto_l1_y"] = losses.l1(pred=auto_y, target=y)
    terms["auto_x"], terms["auto_y"] = w.auto * metrics["auto_l1_x"], w.auto * metrics["auto_l1_y"]

  if "latent" in kept:
    (s_xr, z_xr), _ = _apply(nets["F_e"], gen["F_e"], stats["F_e"], t["fake_y"], train=True, rng=k_rx)
    (s_yr, z_yr), _ = _apply(nets["G_e"], gen["G_e"], stats["G_e"], t["fake_x"], train=True, rng=k_ry)
    metrics["latent_l1"] = (losses.l1(pred=s_xr, target=t["s_x"]) + losses.l1(pred=z_xr, target=t["z_x"])
                            + losses.l1(pred=s_yr, target=t["s_y"]) + losses.l1(pred=z_yr, target=t["z_y"]))
    terms["latent"] = w.latent * metrics["latent_l1"]
  return terms, metrics, new_stats


def generator_loss(gen, crit, stats, batch, rng, *, config):
  """The sum of the weighted generator terms; returns ``(loss, (metrics, new_stats))``."""
  terms, metrics, new_stats = generator_terms(gen, crit, stats, batch, rng, config=config)
  total = sum(terms.values())
  return total, ({**metrics, "loss_gen": total}, new_stats)


def generator_update(gen, crit, stats, opt_state, batch, rng, *, config):
  """One generator update; returns ``(gen, opt_state, metrics, new_stats)``.

  ``config.optim.per_loss=True`` (the official code): every loss term has its own Adam over the
  networks of ``LOSS_GROUPS[term]``; each term's gradient is taken separately and the updates of
  all terms are applied together. ``False``: one Adam over all generator networks on the
  weighted sum.
  """
  opt = common.optimizer(config)
  if not config.optim.per_loss:
    (_, (metrics, new_stats)), grads = jax.value_and_grad(generator_loss, has_aux=True)(
        gen, crit, stats, batch, rng, config=config)
    updates, new_opt = opt.update(grads, opt_state, gen)
    return optax.apply_updates(gen, updates), new_opt, metrics, new_stats

  def term(sub, name):  # one term as a function of the networks its Adam updates
    terms, metrics, new_stats = generator_terms({**gen, **sub}, crit, stats, batch, rng, config=config)
    return terms[name], (terms, metrics, new_stats)

  new_opt, total_updates = {}, jax.tree_util.tree_map(jnp.zeros_like, gen)
  for name in active_terms(config):
    # Each term differentiated on its own, its backward pass only through the networks its Adam
    # updates (measured ~10% faster on facades :cpu than one vjp and a full backward per term).
    sub = {n: gen[n] for n in LOSS_GROUPS[name]}
    grads, (terms, metrics, new_stats) = jax.grad(term, has_aux=True)(sub, name)
    updates, new_opt[name] = opt.update(grads, opt_state[name], sub)
    updates = jax.tree_util.tree_map(lambda u: config.optim.term_lr[name] * u, updates)  # x 1: folded
    for n, u in updates.items():
      total_updates[n] = jax.tree_util.tree_map(jnp.add, total_updates[n], u)
  new_opt = {**opt_state, **new_opt}  # terms an ablation removed keep their (unused) state
  metrics = {**metrics, "loss_gen": sum(terms.values())}
  return optax.apply_updates(gen, total_updates), new_opt, metrics, new_stats


def train_step(state: common.State, batch, *, config):
  nets = networks(config)
  opt = common.optimizer(config)
  k_fake, k_gp, k_gen = common.step_keys(state, 3)
  gen = {n: state.params[n] for n in GENERATORS}
  crit = {n: state.params[n] for n in CRITICS}

  # 1) The critics, on fakes of the current generators.
  fakes, _ = _translations(nets, gen, state.stats, batch["x"], batch["y"], k_fake, config=config)
  fakes = jax.lax.stop_gradient(fakes)
  (c_loss, c_metrics), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
      crit, nets, batch, fakes, k_gp, config=config)
  crit, c_opt = common.update(opt, crit, c_grads, state.opt_state["critics"])

  # 2) The generators, against the updated (frozen) critics.
  gen, g_opt, g_metrics, new_stats = generator_update(
      gen, gradlib.freeze(crit), state.stats, state.opt_state["generators"], batch, k_gen, config=config)

  metrics = {**g_metrics, **c_metrics, "loss_critic": c_loss,
             "lr": common.schedule(config.optim, config.num_steps)(state.step)}
  return state.replace(step=state.step + 1, params={**gen, **crit},
                       opt_state={"generators": g_opt, "critics": c_opt}, stats=new_stats), metrics


# ----------------------------------------------------------------------------- trained maps


def map_fns(config) -> dict:
  """The trained maps (evaluation mode: running batch-norm statistics, no dropout or noise).

  * ``encode_x(x)``, ``encode_y(y)`` -> ``(S, E)``;
  * ``decode_x(s, e)`` (= F_d, an X image), ``decode_y(s, e)`` (= G_d, a Y image);
  * ``translate_x2y(x, reference=None)`` = G_d(S^X, z): z is the exclusive part of the Y image
    ``reference`` (one for all, or one per x) when given, else noise drawn with a fixed key
    (the same z for the same batch size on every call); ``translate_y2x`` the other way;
  * ``exclusive_x2y(x)`` = G_ex(E^X), ``exclusive_y2x(y)`` = F_ex(E^Y).
  """
  nets = networks(config)

  def apply(p, st, name, *args, **kwargs):
    return nets[name].apply({"params": p[name], **st[name]}, *args, train=False, **kwargs)

  def exclusive(encoder, decoder):
    def f(p, st, img):
      s, e = apply(p, st, encoder, img)
      return apply(p, st, decoder, None, e, spatial=s.shape[1:3])
    return f

  def translate(encoder, decoder, other_encoder):
    def f(p, st, img, reference=None):
      s, e = apply(p, st, encoder, img)
      if reference is None:
        z = jax.random.normal(jax.random.PRNGKey(0), e.shape, e.dtype)
      else:
        z = jnp.broadcast_to(apply(p, st, other_encoder, reference)[1], e.shape)
      return apply(p, st, decoder, s, z)
    return f

  return {
      "encode_x": lambda p, st, x: apply(p, st, "G_e", x),
      "encode_y": lambda p, st, y: apply(p, st, "F_e", y),
      "decode_x": lambda p, st, s, e: apply(p, st, "F_d", s, e),
      "decode_y": lambda p, st, s, e: apply(p, st, "G_d", s, e),
      "translate_x2y": translate("G_e", "G_d", "F_e"),
      "translate_y2x": translate("F_e", "F_d", "G_e"),
      "exclusive_x2y": exclusive("G_e", "G_ex"), "exclusive_y2x": exclusive("F_e", "F_ex"),
  }


def sample(state: common.State, batch, *, config) -> dict:
  """Rows: x, two translations G(x, z), the cross-domain autoencoding F_d(S^Y, E^X), G_ex(E^X);
  then the same for y. The noise is fixed (seed 0) so grids of different steps compare."""
  f = common.bind_maps(map_fns, state, config)
  n = min(len(batch["x"]), len(batch["y"]))
  x, y = batch["x"][:n], batch["y"][:n]
  z1, z2 = jax.random.normal(jax.random.PRNGKey(0), (2, n, config.model.exclusive_dim))
  s_x, e_x = f["encode_x"](x)
  s_y, e_y = f["encode_y"](y)
  # Keys sort in row order (the engine's device_get returns a dict with sorted keys).
  return {"x0 x": x, "x1 G(x, z1)": f["decode_y"](s_x, z1), "x2 G(x, z2)": f["decode_y"](s_x, z2),
          "x3 F_d(S^y, E^x)": f["decode_x"](s_y, e_x), "x4 G_ex(E^x)": f["exclusive_x2y"](x),
          "y0 y": y, "y1 F(y, z1)": f["decode_x"](s_y, z1), "y2 F(y, z2)": f["decode_x"](s_y, z2),
          "y3 G_d(S^x, E^y)": f["decode_y"](s_x, e_y), "y4 F_ex(E^y)": f["exclusive_y2x"](y)}
