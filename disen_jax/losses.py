"""Loss functions: small keyword-only pure functions, means over every element."""
from __future__ import annotations

from typing import Callable

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
