"""Flax Linen modules shared by methods."""
from disen_jax.nn.convs import IMPLS, Conv, ConvTranspose
from disen_jax.nn.layers import MLP, Down, PatchGAN, ResBlock, ResnetTranslator, Up, reflect_pad

__all__ = ["IMPLS", "Conv", "ConvTranspose", "Down", "MLP", "PatchGAN", "Up", "ResBlock",
           "ResnetTranslator", "reflect_pad"]
