"""Semi-supervised generation and translation (Hinz & Wermter, IJCNN 2018).

One domain ``x`` (images with a class, few of them labelled). Three networks, as BiGAN / ALI:

* Encoder ``E``: x -> z = (u, c_cat, c_cont): u (``model.noise_dim``, tanh) is the entangled
  rest, c_cat a softmax over ``model.num_classes`` (the categorical variable; its argmax is the
  class E reads), c_cont (``model.num_continuous``, linear) the continuous variables.
* Generator ``G``: z -> x (sigmoid output, i.e. pixels in [0, 1]).
* Discriminator ``D``: tells pairs (x, E(x)) from pairs (G(z), z), with z from the prior
  u ~ U(-1, 1), c_cat one-hot uniform, c_cont ~ U(-1, 1).

Losses of one step (weights ``config.loss``; ``w(t) = min(1, t / loss.ramp_steps)``):

* D: binary cross-entropy, (x, E(x)) real, (G(z), z) fake.
* E and G (``adversarial``, times w): the same with the labels swapped, so E and G learn to
  make their pairs look like the other's (BiGAN); both directions train.
* Mutual information (``mutual_info``, times w, InfoGAN): E must read the code G was given back
  from G(z): cross-entropy of c_cat against E's softmax on G(z), plus the Gaussian NLL (unit
  variance) of c_cont under E's continuous outputs (``mutual_info_loss``).
* Supervised (``supervised`` = 10, the paper's lambda_1): cross-entropy of E's categorical head
  on the labelled examples of the batch, and only those (``supervised_loss``: a mask).
* Reconstruction (``reconstruction`` = 1, lambda_2): ``mean((G(E(x)) - x)^2)`` on [0, 1] pixels.

Labelled examples (the paper, section III): the probability that a batch position holds a
labelled example starts at 1 and falls linearly over ``loss.ramp_steps`` to the true labelled
ratio r. The engine gives every batch its regular examples (``x``, labelled with probability r:
``x/labelled``) and a stream of labelled ones (``labelled/x``); position i takes the labelled
stream's example with probability ``q(t) = max(0, 1 - t / ramp)``, so it is labelled with
probability ``q + (1 - q) r``: linear from 1 to r (``labelled_probability``).

Networks: ``model.arch = "mnist"`` follows the official TF code (tohinz/Image-Generation-And-
Translation) at the library's 32 px MNIST (the official code's 28 px digits padded by 2):
E: conv 3x3 32 (stride 1), 64, 128 (stride 2), all VALID, BN + ELU; dense 1024 BN + ELU; the
three heads. G: dense (R/4)^2 * 64 BN ELU; deconv 4x4 128 stride 2, 64 stride 1 (BN ELU);
deconv 4x4 stride 2 to the image, sigmoid. D: image path conv 3x3 64, 128 stride 2 VALID + dense
512; code path dense 64, 128, 512 (the official 1x1 convs); concatenated, dense 1024, one logit;
BN + ELU and dropout ``model.d_dropout`` (0.3, the paper) after every hidden layer.
``"svhn"`` is our reading of the paper's larger model for 32 px colour images (SVHN, CelebA):
stride-2 4x4 convs 64, 128, 256 in E and D, deconvs 256, 128, 64 in G from a 4x4 seed, u 128-d;
Table I of the paper was not at hand when it was written: treat it as unverified.

Deviations, on purpose:

* The data are the library's [-1, 1] images; the networks see and make [0, 1] pixels as the
  paper's (``to_unit``), and the maps return [-1, 1] images.
* The official code's supervised term is a mean over the labelled examples of the batch, NaN
  when there are none (TF's mean of an empty tensor); here it is 0 then (``supervised_loss``).
* The official D adds Gaussian noise (std 0.3 / 0.5) after its layers; the paper says dropout
  0.3, which is what this does.
* D sees the real and the generated pairs in two batches (``model.d_joint_batch = False``), as
  the official code, so its batch norm normalizes each kind on its own statistics; its last
  hidden layer (dense 1024, BN) then leaves every feature with mean 0 and variance 1 over a batch
  of either kind, and D stays near chance (measured on MNIST at ``:cpu``: D(x, E(x)) ~ D(G(z), z)
  ~ 0.5 throughout; trained alone for 200 steps it does not tell digits from uniform noise).
  ``d_joint_batch = True`` normalizes both kinds together and D works (0.97 / 0.05 at 200
  steps). E's test accuracy dips after the ramp (76 % -> 57-71 % at 1,200-1,400 steps with 100
  labels) and recovers (80 % at 6,000), and the generator error falls to 7 % by 6,000 steps where
  the official form stays at 26-34 %: ``:cpu`` sets it; the paper's setting keeps the official
  form.
* Batch norm: training normalizes with the batch's statistics (E on real images and on G(z)
  separately, as the official code); the running averages the maps use are E's on real images
  and G's on prior codes (momentum ``model.bn_momentum``).
* Optimizers: Adam(b1 = 0.5), lr 1e-4 (D) and 3e-4 (E, G) as the paper; the official code's
  5e-4 with its step decay (halved at 10k, quartered at 20k, ...) is ``optim.lr_g = 5e-4`` with
  ``optim.decay_boundaries`` / ``decay_scales`` (``configs/semisup_mnist.py:official``).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disen_jax import grad as gradlib
from disen_jax import methods
from disen_jax import nn as nnlib
from disen_jax.errors import ConfigError
from disen_jax.methods import common

ARCHS = ("mnist", "svhn")
NETWORKS = ("E", "G", "D")


# ----------------------------------------------------------------------------- networks


def _bn(train: bool, momentum: float):
  return nn.BatchNorm(use_running_average=not train, momentum=momentum)


def _w(features: int, width: float) -> int:
  return max(1, int(round(features * width)))


class Encoder(nn.Module):
  """x in [0, 1] -> (u, categorical logits, continuous)."""
  arch: str
  noise_dim: int
  num_classes: int
  num_continuous: int
  bn_momentum: float = 0.99
  width: float = 1.0
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.arch == "mnist":
      layers, padding = ((32, 3, 1), (64, 3, 2), (128, 3, 2)), "VALID"
    else:
      layers, padding = ((64, 4, 2), (128, 4, 2), (256, 4, 2)), "SAME"
    for features, k, s in layers:
      x = nnlib.Conv(_w(features, self.width), (k, k), strides=s, padding=padding, impl=self.impl)(x)
      x = nn.elu(_bn(train, self.bn_momentum)(x))
    x = x.reshape((x.shape[0], -1))
    x = nn.elu(_bn(train, self.bn_momentum)(nn.Dense(_w(1024, self.width))(x)))
    u = jnp.tanh(nn.Dense(self.noise_dim, name="u")(x))
    logits = nn.Dense(self.num_classes, name="categorical")(x)
    cont = nn.Dense(self.num_continuous, name="continuous")(x)
    return u, logits, cont


class Generator(nn.Module):
  """z = concat(u, c_cat, c_cont) -> image in [0, 1] of ``resolution`` x ``resolution`` x ``channels``.

  The official stride-1 transposed convolution (4x4, 64) is a stride-1 convolution here: the
  same family of maps (a transposed stride-1 convolution is a convolution with the kernel
  flipped), computed without XLA's slow lhs-dilated form."""
  arch: str
  resolution: int
  channels: int
  bn_momentum: float = 0.99
  width: float = 1.0
  impl: str = "lax"

  @nn.compact
  def __call__(self, z, train: bool = False):
    bn = lambda h: nn.elu(_bn(train, self.bn_momentum)(h))
    if self.arch == "mnist":
      side, seed_ch, ups = self.resolution // 4, 64, ((128, 2), (64, 1))
    else:
      side, seed_ch, ups = self.resolution // 8, 256, ((256, 2), (128, 2), (64, 1))
    seed_ch = _w(seed_ch, self.width)
    h = bn(nn.Dense(side * side * seed_ch)(z)).reshape((-1, side, side, seed_ch))
    for features, s in ups:
      f = _w(features, self.width)
      layer = (nnlib.ConvTranspose(f, (4, 4), impl=self.impl) if s == 2
               else nnlib.Conv(f, (4, 4), padding="SAME", impl=self.impl))
      h = bn(layer(h))
    h = nnlib.ConvTranspose(self.channels, (4, 4), impl=self.impl)(h)
    return nn.sigmoid(h)


class Discriminator(nn.Module):
  """(x in [0, 1], z) -> one logit per pair: is it (x, E(x))?"""
  arch: str
  dropout: float = 0.3
  bn_momentum: float = 0.99
  width: float = 1.0
  impl: str = "lax"

  @nn.compact
  def __call__(self, x, z, train: bool = False):
    def block(h):
      h = nn.elu(_bn(train, self.bn_momentum)(h))
      return nn.Dropout(self.dropout, deterministic=not train)(h)

    if self.arch == "mnist":
      convs, padding = ((64, 3), (128, 3)), "VALID"
    else:
      convs, padding = ((64, 4), (128, 4), (256, 4)), "SAME"
    for features, k in convs:
      x = block(nnlib.Conv(_w(features, self.width), (k, k), strides=2, padding=padding, impl=self.impl)(x))
    x = block(nn.Dense(_w(512, self.width))(x.reshape((x.shape[0], -1))))
    for features in (64, 128, 512):
      z = block(nn.Dense(_w(features, self.width))(z))
    h = block(nn.Dense(_w(1024, self.width))(jnp.concatenate([x, z], axis=-1)))
    return nn.Dense(1)(h)[:, 0]


def networks(config) -> dict[str, nn.Module]:
  m = config.model
  impl = nnlib.convs.resolve_impl(m.conv_impl)
  return {"E": Encoder(m.arch, m.noise_dim, m.num_classes, m.num_continuous, m.bn_momentum, m.width, impl),
          "G": Generator(m.arch, config.data.resolution, m.x_channels, m.bn_momentum, m.width, impl),
          "D": Discriminator(m.arch, m.d_dropout, m.bn_momentum, m.width, impl)}


def check_config(config) -> None:
  m, o = config.model, config.optim
  if m.arch not in ARCHS:
    raise ConfigError(f"config.model.arch={m.arch!r}: expected one of {ARCHS}")
  for field in ("noise_dim", "num_classes"):
    if m[field] < 1:
      raise ConfigError(f"config.model.{field}={m[field]} must be >= 1")
  if m.num_continuous < 0:
    raise ConfigError(f"config.model.num_continuous={m.num_continuous} must be >= 0")
  side = 4 if m.arch == "mnist" else 8
  if config.data.resolution % side:
    raise ConfigError(f"config.data.resolution={config.data.resolution}: model.arch={m.arch!r} "
                      f"needs a multiple of {side}")
  if len(o.decay_boundaries) != len(o.decay_scales):
    raise ConfigError(f"config.optim.decay_boundaries={tuple(o.decay_boundaries)} and "
                      f"config.optim.decay_scales={tuple(o.decay_scales)} must have the same length")
  if not m.width > 0:
    raise ConfigError(f"config.model.width={m.width} must be > 0")
  if config.loss.ramp_steps < 0:
    raise ConfigError(f"config.loss.ramp_steps={config.loss.ramp_steps} must be >= 0")


def check_classes(config, info) -> None:
  """The categorical variable has one value per class of the data (``info.num_classes``)."""
  found = (info.num_classes or {}).get("x") if info is not None else None
  if found is not None and found != config.model.num_classes:
    raise ConfigError(f"config.model.num_classes={config.model.num_classes}, but "
                      f"config.data.source={config.data.source!r} (config.data.label="
                      f"{config.data.label!r}) has {found} classes")


# ----------------------------------------------------------------------------- pure pieces


def to_unit(x):
  """Library images in [-1, 1] -> the [0, 1] pixels the networks see and make."""
  return (x + 1.0) * 0.5


def from_unit(x):
  return x * 2.0 - 1.0


def ramp(step, ramp_steps: int):
  """``min(1, step / ramp_steps)`` (1 from the start when ``ramp_steps`` is 0): the weight of the
  adversarial and mutual-information terms at ``step`` (0-based)."""
  if ramp_steps == 0:
    return jnp.ones((), jnp.float32)
  return jnp.minimum(1.0, jnp.asarray(step, jnp.float32) / ramp_steps)


def extra_labelled_probability(step, ramp_steps: int):
  """``q(t) = 1 - ramp(t)``: the chance that a batch position takes the labelled stream's example."""
  return 1.0 - ramp(step, ramp_steps)


def labelled_probability(step, ramp_steps: int, ratio: float):
  """The chance that a batch position holds a labelled example: ``q + (1 - q) * ratio``, i.e.
  linear from 1 at step 0 to the true labelled ``ratio`` at ``ramp_steps``."""
  q = extra_labelled_probability(step, ramp_steps)
  return q + (1.0 - q) * ratio


def mix_labelled(batch, rng, step, ramp_steps: int):
  """The batch's images, labels and labelled mask after the labelled-sampling schedule: position
  i takes ``labelled/x[i]`` (and its label) with probability ``q(step)``, else keeps ``x[i]``
  with its label where ``x/labelled`` says it is known. Returns ``(x, labels, mask)``; labels
  are -1 where the mask is False."""
  take = jax.random.bernoulli(rng, extra_labelled_probability(step, ramp_steps), batch["x/labelled"].shape)
  x = jnp.where(take[:, None, None, None], batch["labelled/x"], batch["x"])
  mask = take | batch["x/labelled"]
  labels = jnp.where(take, batch["labelled/x/label"], batch["x/label"])
  return x, jnp.where(mask, labels, -1), mask


def supervised_loss(*, logits, labels, mask):
  """Mean cross-entropy of ``logits`` against ``labels`` over the positions where ``mask`` is
  True; 0 when none is. Unlabelled positions (their label may be -1) contribute nothing, not
  even through the gradient."""
  safe = jnp.where(mask, labels, 0)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
  n = jnp.sum(mask)
  return jnp.sum(jnp.where(mask, ce, 0.0)) / jnp.maximum(n, 1)


def mutual_info_loss(*, cat_logits, cat_target, cont_mean, cont_target):
  """InfoGAN's lower bound, negated: cross-entropy of the one-hot ``cat_target`` under the softmax
  of ``cat_logits``, plus the Gaussian NLL (unit variance) of ``cont_target`` around
  ``cont_mean`` summed over the continuous variables; means over the batch. Returns
  ``(total, categorical, continuous)``."""
  cat = jnp.mean(optax.softmax_cross_entropy(cat_logits, cat_target))
  nll = 0.5 * jnp.square(cont_target - cont_mean) + 0.5 * jnp.log(2.0 * jnp.pi)
  cont = jnp.mean(jnp.sum(nll, axis=-1))
  return cat + cont, cat, cont


def bce_real(logits):
  """Mean -log sigmoid(logits): the loss of calling these pairs real."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits)))


def bce_fake(logits):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.zeros_like(logits)))


def sample_prior(rng, n: int, config):
  """``(u, c_cat one-hot, c_cont)`` from the prior."""
  m = config.model
  k_u, k_c, k_r = jax.random.split(rng, 3)
  u = jax.random.uniform(k_u, (n, m.noise_dim), minval=-1.0, maxval=1.0)
  cat = jax.nn.one_hot(jax.random.randint(k_c, (n,), 0, m.num_classes), m.num_classes)
  cont = jax.random.uniform(k_r, (n, m.num_continuous), minval=-1.0, maxval=1.0)
  return u, cat, cont


def code(u, cat, cont):
  return jnp.concatenate([u, cat, cont], axis=-1)


# ----------------------------------------------------------------------------- state and step


def spec(config) -> methods.Spec:
  check_config(config)
  return methods.Spec(domains=("x",), fields=("labelled", "labelled_examples"))


def optimizers(config) -> dict[str, optax.GradientTransformation]:
  """Adam for D (``optim.lr_d``) and for E and G together (``optim.lr_g``), both scaled by the
  piecewise-constant ``decay_scales`` after ``decay_boundaries`` (none: constant)."""
  o = config.optim

  def adam(lr):
    bounds = {int(b): float(s) for b, s in zip(o.decay_boundaries, o.decay_scales)}
    # optax multiplies the running rate at each boundary: store ratios of consecutive scales.
    prev, ratios = 1.0, {}
    for b in sorted(bounds):
      ratios[b], prev = bounds[b] / prev, bounds[b]
    sched = optax.piecewise_constant_schedule(lr, ratios) if ratios else lr
    return optax.adam(sched, b1=o.b1, b2=o.b2)

  return {"ge": adam(o.lr_g), "d": adam(o.lr_d)}


def init(rng, config, batch, info=None) -> common.State:
  check_config(config)
  check_classes(config, info)
  nets = networks(config)
  x = to_unit(batch["x"][:2])
  k_e, k_g, k_d, k_state = jax.random.split(rng, 4)
  variables = {"E": dict(nets["E"].init(k_e, x))}
  u, logits, cont = nets["E"].apply(variables["E"], x)
  z = code(u, jax.nn.softmax(logits), cont)
  variables["G"] = dict(nets["G"].init(k_g, z))
  variables["D"] = dict(nets["D"].init(k_d, x, z))
  params = {n: v.pop("params") for n, v in variables.items()}
  opts = optimizers(config)
  return common.State(
      step=jnp.zeros((), jnp.int32), rng=k_state, params=params,
      opt_state={"ge": opts["ge"].init({n: params[n] for n in ("E", "G")}),
                 "d": opts["d"].init({"D": params["D"]})},
      stats=variables, history={})


def _apply(net, params, stats, *args, rng=None):
  """``net`` in training mode (batch statistics, dropout); returns ``(out, new stats)``."""
  kwargs = {"rngs": {"dropout": rng}} if rng is not None else {}
  out, new = net.apply({"params": params, **stats}, *args, train=True, mutable=list(stats), **kwargs)
  return out, {**stats, **new}


def discriminate(net, params, stats, x, z_real, fake, z_fake, rng, *, joint: bool):
  """D's logits on the pairs (x, E(x)) and (G(z), z) in training mode: ``(d_real, d_fake, new
  stats)``. ``joint``: one batch of both kinds, so D's batch norm normalizes real and generated
  pairs with the same statistics; else one call per kind, as the official code (why D then hardly
  learns: the module's deviations)."""
  if joint:
    both, st = _apply(net, params, stats, jnp.concatenate([x, fake]), jnp.concatenate([z_real, z_fake]),
                      rng=rng)
    return both[:len(x)], both[len(x):], st
  k_dr, k_df = jax.random.split(rng)
  d_real, st = _apply(net, params, stats, x, z_real, rng=k_dr)
  d_fake, _ = _apply(net, params, stats, fake, z_fake, rng=k_df)
  return d_real, d_fake, st


def forward(params, stats, x, prior, rng, *, config):
  """Every network output of one step (training mode) on real ``x`` ([0, 1]) and a ``prior``
  draw: returns ``(out, new_stats)``."""
  nets = networks(config)
  (u, logits, cont), st_e = _apply(nets["E"], params["E"], stats["E"], x)
  z_real = code(u, jax.nn.softmax(logits), cont)
  z_fake = code(*prior)
  fake, st_g = _apply(nets["G"], params["G"], stats["G"], z_fake)
  (_, gen_logits, gen_cont), _ = _apply(nets["E"], params["E"], stats["E"], fake)
  recon, _ = _apply(nets["G"], params["G"], stats["G"], z_real)
  d_real, d_fake, _ = discriminate(nets["D"], params["D"], stats["D"], x, z_real, fake, z_fake, rng,
                                   joint=config.model.d_joint_batch)
  out = dict(logits=logits, gen_logits=gen_logits, gen_cont=gen_cont, recon=recon, fake=fake,
             z_real=z_real, z_fake=z_fake, d_real=d_real, d_fake=d_fake)
  return out, {**stats, "E": st_e, "G": st_g}


def generator_loss(ge, d_params, stats, x, labels, mask, prior, rng, weight, *, config):
  """The E and G loss (D frozen); returns ``(loss, (metrics, pairs, new_stats))``, ``pairs`` the
  (not differentiated) codes and images D judges: ``(z_real, fake, z_fake)``."""
  w = config.loss
  out, new_stats = forward({**ge, "D": gradlib.freeze(d_params)}, stats, x, prior, rng, config=config)
  adversarial = bce_fake(out["d_real"]) + bce_real(out["d_fake"])
  mi, mi_cat, mi_cont = mutual_info_loss(cat_logits=out["gen_logits"], cat_target=prior[1],
                                         cont_mean=out["gen_cont"], cont_target=prior[2])
  sup = supervised_loss(logits=out["logits"], labels=labels, mask=mask)
  recon = jnp.mean(jnp.square(out["recon"] - x))
  total = (weight * (w.adversarial * adversarial + w.mutual_info * mi) + w.supervised * sup
           + w.reconstruction * recon)
  hits = jnp.sum(jnp.where(mask, jnp.argmax(out["logits"], -1) == labels, False))
  metrics = {"loss_ge": total, "adversarial_ge": adversarial, "mutual_info": mi,
             "mutual_info_cat": mi_cat, "mutual_info_cont": mi_cont, "supervised": sup,
             "reconstruction": recon, "labelled_accuracy": hits / jnp.maximum(jnp.sum(mask), 1)}
  pairs = jax.lax.stop_gradient((out["z_real"], out["fake"], out["z_fake"]))
  return total, (metrics, pairs, new_stats)


def discriminator_loss(d_params, d_stats, x, pairs, rng, *, config):
  """D's loss on the pairs (x, E(x)) and (G(z), z) of the generator pass (same dropout keys);
  returns ``(loss, (metrics, new D stats))``."""
  net = networks(config)["D"]
  z_real, fake, z_fake = pairs
  d_real, d_fake, st = discriminate(net, d_params, d_stats, x, z_real, fake, z_fake, rng,
                                    joint=config.model.d_joint_batch)
  loss = bce_real(d_real) + bce_fake(d_fake)
  return loss, ({"loss_d": loss, "d_real": jnp.mean(jax.nn.sigmoid(d_real)),
                 "d_fake": jnp.mean(jax.nn.sigmoid(d_fake))}, st)


def train_step(state: common.State, batch, *, config):
  """One simultaneous update of D and of E, G from the same parameters (the official code runs
  both optimizers in one session call)."""
  k_mix, k_prior, k_fwd = common.step_keys(state, 3)
  ramp_steps = config.loss.ramp_steps
  x, labels, mask = mix_labelled(batch, k_mix, state.step, ramp_steps)
  x = to_unit(x)
  prior = sample_prior(k_prior, x.shape[0], config)
  weight = ramp(state.step, ramp_steps)
  opts = optimizers(config)
  ge = {n: state.params[n] for n in ("E", "G")}

  (_, (g_metrics, pairs, new_stats)), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(
      ge, state.params["D"], state.stats, x, labels, mask, prior, k_fwd, weight, config=config)
  (_, (d_metrics, d_stats)), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
      state.params["D"], state.stats["D"], x, pairs, k_fwd, config=config)
  ge, ge_opt = common.update(opts["ge"], ge, g_grads, state.opt_state["ge"])
  d, d_opt = common.update(opts["d"], {"D": state.params["D"]}, {"D": d_grads}, state.opt_state["d"])
  metrics = {**g_metrics, **d_metrics, "ramp": weight, "labelled_fraction": jnp.mean(mask)}
  return state.replace(step=state.step + 1, params={**ge, **d}, opt_state={"ge": ge_opt, "d": d_opt},
                       stats={**new_stats, "D": d_stats}), metrics


# ----------------------------------------------------------------------------- trained maps


def map_fns(config) -> dict:
  """The trained maps (running batch-norm statistics, no dropout); images in [-1, 1]:

  * ``encode_x(x)`` -> ``(u, class probabilities, continuous)``;
  * ``decode_x(u, c_cat, c_cont)`` -> images (``c_cat`` one-hot, or E's probabilities);
  * ``classify_x(x)`` -> the categorical head's logits.
  """
  nets = networks(config)

  def apply(p, st, name, *args):
    return nets[name].apply({"params": p[name], **st[name]}, *args, train=False)

  def encode(p, st, x):
    u, logits, cont = apply(p, st, "E", to_unit(x))
    return u, jax.nn.softmax(logits), cont

  return {
      "encode_x": encode,
      "decode_x": lambda p, st, u, cat, cont: from_unit(apply(p, st, "G", code(u, cat, cont))),
      "classify_x": lambda p, st, x: apply(p, st, "E", to_unit(x))[1],
  }


def sample(state: common.State, batch, *, config) -> dict:
  """Rows: test images, their reconstructions G(E(x)), then one row per class k (at most 10):
  G(u_i, k, 0) with the same u_i in every row (a class sweep: columns keep the style)."""
  f = common.bind_maps(map_fns, state, config)
  x = batch["x"]
  n, m = len(x), config.model
  rows = {"a x": x, "b G(E(x))": f["decode_x"](*f["encode_x"](x))}
  u = jax.random.uniform(jax.random.PRNGKey(0), (n, m.noise_dim), minval=-1.0, maxval=1.0)
  cont = jnp.zeros((n, m.num_continuous))
  for k in range(min(m.num_classes, 10)):
    cat = jax.nn.one_hot(jnp.full((n,), k), m.num_classes)
    rows[f"c{k} class {k}"] = f["decode_x"](u, cat, cont)
  return rows
