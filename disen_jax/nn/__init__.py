"""Flax Linen modules shared by methods: one network family per module."""
from disen_jax.nn.convs import IMPLS, Conv, ConvTranspose
from disen_jax.nn.layers import MLP, PatchGAN, ResBlock, ResnetTranslator
from disen_jax.nn.pix2pix import Critic, Decoder, Down, Encoder, Up

__all__ = ["IMPLS", "Conv", "ConvTranspose", "Critic", "Decoder", "Down", "Encoder", "MLP",
           "PatchGAN", "ResBlock", "ResnetTranslator", "Up"]
