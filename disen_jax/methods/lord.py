"""LORD: latent optimization for class/content disentanglement (Gabbay & Hoshen, ICLR 2020).

Images with a class label (a car model, an object, an identity); what varies inside a class
(pose, expression) is the *content*, never labelled. Two phases (``methods.Phase``):

1. ``latent`` (latent optimization): a class table (``num_classes x class_dim``) and a content
   table (``num_images x content_dim``, one row per training image: the ``index`` field) are
   parameters, optimized jointly with the class modulation and the generator
   (``nn.lord.ClassModulation``, ``nn.lord.AdaINGenerator``) to reconstruct every training
   image from its class row and its own content row. The class row is shared by every image of
   the class, so it can only hold what the class shares; the content row of one image could hold
   anything, so it is *regularized*: an L2 activity penalty (``loss.content_decay``) and
   additive Gaussian noise ``N(0, model.content_std^2)`` at train time make it costly to carry
   more than the class row cannot give. Class rows get neither.
2. ``amortize``: a class and a content encoder (``nn.lord.ConvEncoder``) learn to output the
   tables' rows from the image (MSE, weight ``loss.amortize``) while the modulation and the
   generator are fine-tuned with the reconstruction loss on the encoders' codes. The tables stay
   as phase 1 left them. Classes unseen in training get their code from the class encoder.

Inference (``map_fns``): ``encode_x(x) -> (class code, content code)`` by the encoders,
``decode_x(class code, content code)``, ``transfer_x(class images, content images)`` (the class
of the first, the content of the second) and ``table_codes(labels, indices)`` (phase 1's rows).

Reconstruction loss (``loss.recon``): the official code uses a VGG16 perceptual loss (pixel L1 +
L1 of features at layers 2, 5, 8, 13, 18). No pretrained weights can be downloaded here, so
``"perceptual"`` takes them from ``loss.perceptual_weights`` (an .npz, ``nn.vgg``), and the
default ``"l1_ms_ssim"`` (``losses.l1_ms_ssim``) needs none. This changes what the generator is
pushed to reproduce (pixels and local structure rather than VGG features); it is not the paper's
loss, so sharpness and LPIPS-like numbers will differ.

The two official implementations disagree; the defaults follow the authors' TensorFlow/Keras code
(avivga/lord), ``configs/lord_cars3d.py:pytorch`` gives the PyTorch port's (avivga/lord-pytorch):

* content decay 1e-3 on the code *before* the noise (TF) vs 1e-4 on the *noisy* code (port)
  (``loss.content_decay``, ``loss.decay_on_noisy``);
* batch 64 (TF) vs 128 (port) (``batch_size``);
* leaky ReLU slope 0.3 (Keras' default, TF) vs 0.01 (PyTorch's default, port) (``model.leak``);
* phase 2 code-regression weights 1e4 (TF) vs 10 (port) (``loss.amortize``);
* both: the tables learn at 10x the networks' learning rate (``optim.table_lr_mult``).
Further differences of ours: the output is ``2 * sigmoid - 1`` (images in [-1, 1]); the
learning rate is held then decayed linearly within each phase (``optim.hold_fraction``; TF
reduces it on plateaus, the port anneals it by cosine); the steps are counted in steps, not
epochs; tables start uniform in [-0.05, 0.05] (Keras' ``Embedding`` default).

Ablations of the paper's Table 3 that ``model``/``loss`` express: ``model.content_encoder=True``
(content codes from an encoder already in phase 1, "amortized" instead of a table; in phase 2
the content encoder is then only fine-tuned by the reconstruction loss),
``model.regularizer="kl"`` (a VAE-style KL to N(0, I) of weight ``loss.kl`` on a Gaussian
content code, mean and log-variance per row, instead of noise + decay), ``"none"`` (neither:
with ``content_encoder=True`` a plain class-conditional autoencoder, the baseline of the
experiments), and phase 1 alone (``phases.amortize=0``; ``table_codes`` then gives the codes).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from disen_jax import losses
from disen_jax import methods
from disen_jax.errors import ConfigError
from disen_jax.methods import common
from disen_jax.nn import vgg
from disen_jax.nn.lord import AdaINGenerator, ClassModulation, ConvEncoder

TABLES = ("class_table", "content_table")
REGULARIZERS = ("noise", "kl", "none")
RECON_LOSSES = ("l1_ms_ssim", "perceptual")
TABLE_INIT = 0.05
BYTES_PER_TABLE_ENTRY = 4 * 3  # float32 value + Adam's two moments


def check_config(config) -> None:
  m, l = config.model, config.loss
  if m.regularizer not in REGULARIZERS:
    raise ConfigError(f"config.model.regularizer={m.regularizer!r}: expected one of {REGULARIZERS}")
  if l.recon not in RECON_LOSSES:
    raise ConfigError(f"config.loss.recon={l.recon!r}: expected one of {RECON_LOSSES}")
  if l.recon == "perceptual":
    vgg.load_weights(l.perceptual_weights, tuple(l.perceptual_layers))
  if config.data.resolution % 2 ** m.adain_layers:
    raise ConfigError(f"config.data.resolution={config.data.resolution} must be a multiple of "
                      f"2^config.model.adain_layers = {2 ** m.adain_layers}")


def _content_width(config) -> int:
  """Columns of a content row: the code, or its mean and log-variance (``regularizer="kl"``)."""
  return config.model.content_dim * (2 if config.model.regularizer == "kl" else 1)


def check_table_size(config, num_images: int) -> None:
  """The content table (and its Adam moments) must fit ``model.max_table_mb``."""
  mb = num_images * _content_width(config) * BYTES_PER_TABLE_ENTRY / 2**20
  if not config.model.content_encoder and mb > config.model.max_table_mb:
    raise ConfigError(
        f"the content table of {num_images} training images x {_content_width(config)} "
        f"(config.model.content_dim) takes {mb:.0f} MB with its Adam moments, more than "
        f"config.model.max_table_mb={config.model.max_table_mb}: lower config.data.num_train or "
        "content_dim, use config.model.content_encoder=True, or raise the limit if the memory is there")


def networks(config, channels: int) -> dict[str, nn.Module]:
  m = config.model
  enc = dict(features=tuple(m.encoder_features), dense=tuple(m.encoder_dense), leak=m.leak)
  return {
      "modulation": ClassModulation(m.adain_layers, m.adain_dim),
      "generator": AdaINGenerator(config.data.resolution, channels, m.adain_layers, m.adain_dim,
                                  m.out_features, m.leak),
      "class_encoder": ConvEncoder(m.class_dim, **enc),
      "content_encoder": ConvEncoder(_content_width(config), **enc),
  }


def _optimizer(config, steps: int, tables) -> optax.GradientTransformation:
  """Adam over a phase's networks; the ``tables`` at ``optim.table_lr_mult`` x the rate."""
  o = config.optim
  rate = common.schedule(o, steps)
  adam = lambda lr: optax.adam(lr, b1=o.b1, b2=o.b2)
  return optax.multi_transform(
      {"net": adam(rate), "table": adam(lambda s: o.table_lr_mult * rate(s))},
      lambda params: {k: "table" if k in tables else "net" for k in params})


def phase_trainables(config) -> tuple[tuple[str, ...], tuple[str, ...]]:
  content = ("content_encoder",) if config.model.content_encoder else ("content_table",)
  latent = ("class_table",) + content + ("modulation", "generator")
  amortize = ("class_encoder", "content_encoder", "modulation", "generator")
  return latent, amortize


def spec(config) -> methods.Spec:
  check_config(config)
  latent, amortize = phase_trainables(config)
  p = config.phases
  return methods.Spec(domains=("x",), fields=("index", "label"), phases=(
      methods.Phase("latent", p.latent, latent, _optimizer(config, p.latent, TABLES)),
      methods.Phase("amortize", p.amortize, amortize, _optimizer(config, p.amortize, ()))))


def init(rng, config, batch, info) -> common.State:
  check_config(config)
  x = batch["x"][:1]
  num_images, num_classes = info.num_examples["x"], info.num_classes["x"]
  check_table_size(config, num_images)
  nets = networks(config, x.shape[-1])
  keys = jax.random.split(rng, 7)
  m = config.model
  table = lambda k, n, d: jax.random.uniform(k, (n, d), minval=-TABLE_INIT, maxval=TABLE_INIT)
  params = {"class_table": table(keys[0], num_classes, m.class_dim),
            "content_table": table(keys[1], num_images if not m.content_encoder else 1,
                                   _content_width(config))}
  params["modulation"] = nets["modulation"].init(keys[2], params["class_table"][:1])["params"]
  adain = nets["modulation"].apply({"params": params["modulation"]}, params["class_table"][:1])
  params["generator"] = nets["generator"].init(
      keys[3], jnp.zeros((1, m.content_dim)), adain)["params"]
  params["class_encoder"] = nets["class_encoder"].init(keys[4], x)["params"]
  params["content_encoder"] = nets["content_encoder"].init(keys[5], x)["params"]
  return common.State(step=jnp.zeros((), jnp.int32), rng=keys[6], params=params, opt_state={},
                      stats={}, history={})


# ----------------------------------------------------------------------------- losses


def reconstruction_loss(*, pred, target, config):
  """``config.loss.recon`` between generated and real images."""
  l = config.loss
  if l.recon == "perceptual":
    layers = tuple(l.perceptual_layers)
    weights = vgg.load_weights(l.perceptual_weights, layers)
    return losses.perceptual(pred=pred, target=target,
                             features=lambda v: vgg.vgg_features(weights, v, layers))
  return losses.l1_ms_ssim(pred=pred, target=target, ssim_weight=l.ssim_weight, scales=l.ssim_scales)


def regularize_content(row, rng, *, config, train: bool):
  """A content row -> ``(code the generator sees, penalty)``.

  ``noise``: ``code = row + N(0, content_std^2)`` at train time (``row`` otherwise), penalty
  ``content_decay * mean_batch(sum(v^2))`` with ``v`` the row (TF) or the noisy code
  (``loss.decay_on_noisy``, the port); ``kl``: row = (mean, log-variance), code sampled at train
  time (the mean otherwise), penalty ``loss.kl`` x the KL to N(0, I); ``none``: the row, 0.
  The penalty is Keras' activity regularizer: summed over a code, averaged over the batch."""
  m, l = config.model, config.loss
  if m.regularizer == "kl":
    mean, logvar = jnp.split(row, 2, axis=-1)
    kl = 0.5 * jnp.mean(jnp.sum(jnp.square(mean) + jnp.exp(logvar) - logvar - 1.0, axis=-1))
    code = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape) if train else mean
    return code, l.kl * kl
  if m.regularizer == "none":
    return row, jnp.zeros(())
  noisy = row + m.content_std * jax.random.normal(rng, row.shape) if train else row
  decayed = noisy if l.decay_on_noisy else row
  return noisy, l.content_decay * jnp.mean(jnp.sum(jnp.square(decayed), axis=-1))


def generate(params, class_code, content_code, *, config, channels: int):
  nets = networks(config, channels)
  adain = nets["modulation"].apply({"params": params["modulation"]}, class_code)
  return nets["generator"].apply({"params": params["generator"]}, content_code, adain)


def _encode(params, name, x, *, config):
  return networks(config, x.shape[-1])[name].apply({"params": params[name]}, x)


def content_rows(params, batch, *, config):
  """Phase 1's content rows of a batch: the table's (by ``x/index``) or the encoder's."""
  if config.model.content_encoder:
    return _encode(params, "content_encoder", batch["x"], config=config)
  return params["content_table"][batch["x/index"]]


def latent_loss(params, batch, rng, *, config):
  """Phase 1: reconstruct each image from its class row and its regularized content row."""
  x = batch["x"]
  code, penalty = regularize_content(content_rows(params, batch, config=config), rng, config=config,
                                     train=True)
  out = generate(params, params["class_table"][batch["x/label"]], code, config=config,
                 channels=x.shape[-1])
  recon = reconstruction_loss(pred=out, target=x, config=config)
  return recon + penalty, {"recon": recon, "content_penalty": penalty}


def amortize_loss(params, batch, rng, *, config):
  """Phase 2: the encoders regress phase 1's codes (frozen tables); the generator is
  fine-tuned on the encoders' codes."""
  del rng
  x = batch["x"]
  class_code = _encode(params, "class_encoder", x, config=config)
  content = _encode(params, "content_encoder", x, config=config)
  class_target = jax.lax.stop_gradient(params["class_table"][batch["x/label"]])
  class_mse = losses.l2(pred=class_code, target=class_target)
  content_mse = jnp.zeros(())
  if not config.model.content_encoder:
    content_mse = losses.l2(pred=content, target=jax.lax.stop_gradient(
        params["content_table"][batch["x/index"]]))
  code, _ = regularize_content(content, None, config=config, train=False)
  out = generate(params, class_code, code, config=config, channels=x.shape[-1])
  recon = reconstruction_loss(pred=out, target=x, config=config)
  loss = recon + config.loss.amortize * (class_mse + content_mse)
  return loss, {"recon": recon, "class_mse": class_mse, "content_mse": content_mse}


def train_step(state: common.State, batch, *, config, phase):
  (rng,) = common.step_keys(state, 1)
  loss_fn = latent_loss if phase.name == "latent" else amortize_loss
  (loss, metrics), grads = common.phase_grads(loss_fn, state, phase, batch, rng, config=config)
  state = common.phase_update(state, phase, grads)
  return state.replace(step=state.step + 1), {**metrics, "loss": loss}


# ----------------------------------------------------------------------------- trained maps


def map_fns(config) -> dict:
  """The trained maps (no noise): ``encode_x(x) -> (class code, content code)`` (the
  encoders; the content code is the KL variant's mean), ``decode_x(class code, content code)``,
  ``transfer_x(class_images, content_images)`` and ``table_codes(labels, indices)`` (phase 1's
  class and content rows, for training images)."""

  def encode(p, st, x):
    content, _ = regularize_content(_encode(p, "content_encoder", x, config=config), None,
                                    config=config, train=False)
    return _encode(p, "class_encoder", x, config=config), content

  def decode(p, st, class_code, content_code):
    return generate(p, class_code, content_code, config=config, channels=config.data.channels)

  def transfer(p, st, class_images, content_images):
    return decode(p, st, encode(p, st, class_images)[0], encode(p, st, content_images)[1])

  def table_codes(p, st, labels, indices):
    content, _ = regularize_content(p["content_table"][indices], None, config=config, train=False)
    return p["class_table"][labels], content

  return {"encode_x": encode, "decode_x": decode, "transfer_x": transfer, "table_codes": table_codes}


def sample(state: common.State, batch, *, config) -> dict:
  """Rows: x (content), x rolled by one (class), their transfer, and the reconstruction."""
  f = common.bind_maps(map_fns, state, config)
  x = batch["x"]
  other = jnp.roll(x, 1, axis=0)
  return {"a content x": x, "b class x'": other, "c transfer(class x', content x)":
          f["transfer_x"](other, x), "d reconstruction": f["transfer_x"](x, x)}
