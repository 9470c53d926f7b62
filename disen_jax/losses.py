"""Loss functions: small keyword-only pure functions, means over every element."""
from __future__ import annotations

from typing import Callable

import dm_pix as pix
import jax
import jax.numpy as jnp
import optax


def l1(*, pred, target):
  return jnp.mean(jnp.abs(pred - target))


def l2(*, pred, target):
  return jnp.mean(jnp.square(pred - target))


def bce_with_logits(*, logits, labels):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def lsgan_generator(*, fake_logits):
  """Least-squares GAN (Mao et al.), generator side: ``mean((D(fake) - 1)^2)``."""
  return jnp.mean(jnp.square(fake_logits - 1.0))


def lsgan_discriminator(*, real_logits, fake_logits):
  """Least-squares GAN, discriminator side, halved as in CycleGAN's reference code."""
  return 0.5 * (jnp.mean(jnp.square(real_logits - 1.0)) + jnp.mean(jnp.square(fake_logits)))


def wgan_generator(*, fake_scores):
  return -jnp.mean(fake_scores)


def wgan_gp_critic(*, critic: Callable, real, fake, rng, gp_weight: float = 10.0):
  """WGAN-GP critic loss (Gulrajani et al.): ``E[C(fake)] - E[C(real)] + w * E[(|grad C(x_hat)| - 1)^2]``.

  ``critic`` maps a batch to per-example (or per-patch) scores; ``x_hat`` are random points on
  the segments between real and fake examples. Returns ``(loss, {"wasserstein": .., "gp": ..})``.
  """
  fake = jax.lax.stop_gradient(fake)
  eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  eps = jax.random.uniform(rng, eps_shape, real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
  norms = jnp.sqrt(jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=-1) + 1e-12)
  gp = jnp.mean(jnp.square(norms - 1.0))
  w_dist = jnp.mean(critic(real)) - jnp.mean(critic(fake))
  return -w_dist + gp_weight * gp, {"wasserstein": w_dist, "gp": gp}


def ms_ssim(*, pred, target, scales: int = 3, filter_size: int = 11):
  """Multi-scale SSIM of NHWC images in [-1, 1]: the mean over ``scales`` scales (each a 2x2
  average pooling of the previous) of ``dm_pix.ssim``'s mean, at the scales whose side is at
  least ``filter_size`` (always the first). A simplified MS-SSIM: equal weights per scale, the
  full SSIM at each (Wang et al. use contrast-structure only below the coarsest)."""
  a, b, values = (pred + 1.0) / 2.0, (target + 1.0) / 2.0, []
  for s in range(scales):
    if s and min(a.shape[1:3]) < filter_size:
      break
    size = min(filter_size, min(a.shape[1:3]) // 2 * 2 - 1)
    values.append(jnp.mean(pix.ssim(a, b, max_val=1.0, filter_size=size)))
    a, b = (jax.lax.reduce_window(v, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
            for v in (a, b))
  return sum(values) / len(values)


def l1_ms_ssim(*, pred, target, ssim_weight: float = 1.0, scales: int = 3):
  """``l1 + ssim_weight * (1 - ms_ssim)``: a reconstruction loss that needs no pretrained
  network (LORD's default here, in place of its VGG perceptual loss)."""
  return l1(pred=pred, target=target) + ssim_weight * (1.0 - ms_ssim(pred=pred, target=target,
                                                                    scales=scales))


def perceptual(*, pred, target, features: Callable):
  """LORD's perceptual loss: the pixel L1 plus the mean absolute difference of each feature map
  in ``features(images) -> [maps]`` (e.g. ``nn.vgg.vgg_features`` with a user's weights).
  Grayscale images are repeated to three channels."""
  if pred.shape[-1] == 1:
    pred, target = jnp.repeat(pred, 3, -1), jnp.repeat(target, 3, -1)
  loss = l1(pred=pred, target=target)
  for f_pred, f_target in zip(features(pred), features(target)):
    loss += l1(pred=f_pred, target=f_target)
  return loss
