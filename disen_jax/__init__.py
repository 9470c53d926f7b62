"""disen_jax: disentangled representations and image-to-image translation in JAX/Flax."""

__version__ = "0.1.0"
