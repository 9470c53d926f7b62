"""Flax Linen modules shared by methods."""
from disen_jax.nn.layers import MLP, PatchGAN, ResBlock, ResnetTranslator, reflect_pad

__all__ = ["MLP", "PatchGAN", "ResBlock", "ResnetTranslator", "reflect_pad"]
