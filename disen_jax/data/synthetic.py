"""Harley et al.'s synthetic benchmark (section 4.1): V = concat(c, r), C ~ N(2, 1), R ~ N(-2, 1).

Two variants (``data_config.variant``):
* ``"gaussian"``: the paper's data. Both factors are unit-variance Gaussians, so the joint of
  (c - 2, r + 2) is rotation invariant: any rotation of the true factors explains the data
  equally well, and the true r is not identifiable from V alone.
* ``"uniform"``: C uniform with the same mean and variance (2 +- sqrt(3)), R Gaussian; a rotation
  would change the marginal of c', which A_C can see, so only sign flips remain.

Domain C and domain V are drawn independently (unpaired); the true c and r of every V example
are kept in ``extras`` for evaluation only.
"""
from __future__ import annotations

import numpy as np

from disen_jax.data import Dataset, register
from disen_jax.errors import DataError

VARIANTS = ("gaussian", "uniform")
_SPLIT_SEED = {"train": 0, "test": 1}


def sample_c(rng: np.random.Generator, n: int, variant: str) -> np.ndarray:
  if variant == "gaussian":
    return rng.normal(2.0, 1.0, size=(n, 1))
  if variant == "uniform":
    half = np.sqrt(3.0)
    return rng.uniform(2.0 - half, 2.0 + half, size=(n, 1))
  raise DataError(f"config.data.variant={variant!r}: expected one of {VARIANTS}")


def make(variant: str, n: int, *, seed: int, split: str) -> Dataset:
  if split not in _SPLIT_SEED:
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
  c_domain = sample_c(rng, n, variant)
  c_true = sample_c(rng, n, variant)
  r_true = rng.normal(-2.0, 1.0, size=(n, 1))
  v = np.concatenate([c_true, r_true], axis=1)
  f32 = lambda a: a.astype(np.float32)
  return Dataset(domains={"v": f32(v), "c": f32(c_domain)},
                 extras={"v/c": f32(c_true[:, 0]), "v/r": f32(r_true[:, 0])})


@register("synthetic", variant="gaussian", num_train=10_000, num_test=2_000)
def build(data_config, split: str) -> Dataset:
  n = data_config.num_train if split == "train" else data_config.num_test
  return make(data_config.variant, n, seed=data_config.seed, split=split)
