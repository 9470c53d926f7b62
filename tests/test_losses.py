import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import losses


def test_lsgan_values():
  real, fake = jnp.array([1.0, 0.0]), jnp.array([0.0, 2.0])
  assert losses.lsgan_generator(fake_logits=fake) == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2) / 2)
  assert losses.lsgan_discriminator(real_logits=real, fake_logits=fake) == pytest.approx(
      0.5 * ((0 + 1) / 2 + (0 + 4) / 2))


def test_l1_l2_bce():
  p, t = jnp.array([1.0, -1.0, 3.0]), jnp.array([0.0, 1.0, 3.0])
  assert losses.l1(pred=p, target=t) == pytest.approx(1.0)
  assert losses.l2(pred=p, target=t) == pytest.approx(5.0 / 3)
  assert losses.bce_with_logits(logits=jnp.zeros(4), labels=jnp.ones(4)) == pytest.approx(np.log(2))


def test_losses_are_keyword_only():
  with pytest.raises(TypeError):
    losses.l1(jnp.zeros(2), jnp.zeros(2))  # pylint: disable=too-many-function-args


def test_wgan_gp_on_a_linear_critic():
  # critic(x) = sum(a * x): its input gradient is a everywhere, so gp = (|a| - 1)^2 exactly,
  # and the Wasserstein estimate is mean(critic(real)) - mean(critic(fake)).
  a = jnp.array([3.0, 4.0])  # |a| = 5
  critic = lambda x: x @ a
  real = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  fake = jnp.array([[0.0, 0.0], [1.0, 1.0]])
  loss, aux = losses.wgan_gp_critic(critic=critic, real=real, fake=fake, rng=jax.random.PRNGKey(0),
                                    gp_weight=10.0)
  w = (3.0 + 4.0) / 2 - (0.0 + 7.0) / 2
  assert aux["gp"] == pytest.approx(16.0, rel=1e-5)
  assert aux["wasserstein"] == pytest.approx(w)
  assert loss == pytest.approx(-w + 160.0, rel=1e-5)
  # A unit-norm critic has no penalty.
  _, aux = losses.wgan_gp_critic(critic=lambda x: x @ (a / 5), real=real, fake=fake,
                                 rng=jax.random.PRNGKey(1))
  assert aux["gp"] == pytest.approx(0.0, abs=1e-5)


def test_wgan_gp_gradient_reaches_critic_params():
  def loss(w):
    return losses.wgan_gp_critic(critic=lambda x: x @ w, real=jnp.ones((2, 2)), fake=jnp.zeros((2, 2)),
                                 rng=jax.random.PRNGKey(0))[0]
  g = jax.grad(loss)(jnp.array([3.0, 4.0]))
  assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0
