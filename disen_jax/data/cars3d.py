"""Cars3D (Reed et al., Deep Visual Analogy-Making, NeurIPS 2015): 183 car CAD models rendered
at 4 elevations x 24 azimuths, the class/content dataset of LORD and disentanglement_lib.

``config.data.path`` is either

* an ``.npz`` with key ``images``, uint8 ``(cars, 4, 24, H, W, 3)`` = (car, elevation, azimuth,
  ...), e.g. ``../shared/data/cars3d/cars3d_64.npz``; or
* disentanglement_lib's folder of ``*.mat`` files (``data/cars`` of Reed et al.'s
  ``nips2015-analogy-data.tar.gz``), one per car, key ``im`` uint8 ``(H, W, 3, 24, 4)`` =
  (..., azimuth, elevation); cars in natural file-name order. Reading them needs scipy
  (``pip install -e '.[mat]'``).

Domains (paired): ``image`` (resized to ``config.data.resolution``), ``car``, ``elevation`` and
``azimuth`` (int32); the last two also as ground truth of ``image`` (``extras["image/elevation"]``,
``extras["image/azimuth"]``), which stay with the images when ``config.data.domains`` picks
them alone (e.g. LORD's content-transfer targets). The renders stay in memory as uint8 and are
decoded to float32 one at a time.
LORD and disentanglement_lib train and score on every render, so by default the test split is the
train split (capped by ``num_test``); ``config.data.test_cars = k`` holds the last k cars out as
the test split instead. A file with the wrong keys, shape or dtype is an error naming it.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from disen_jax.data import Dataset, capped, images, lazy, register
from disen_jax.data.folders import natural_key
from disen_jax.errors import DataError

ELEVATIONS, AZIMUTHS = 4, 24


def _check(array, where: str, expected: str, ok: bool) -> None:
  if not ok:
    raise DataError(f"{where}: expected {expected}, got {array.dtype} {array.shape}")


def load_npz(path: str) -> np.ndarray:
  """uint8 (cars, ELEVATIONS, AZIMUTHS, H, W, 3) from an npz with key ``images``."""
  try:
    with np.load(path) as f:
      if "images" not in f:
        raise DataError(f"{path}: no key 'images' (keys: {sorted(f.keys())})")
      arr = f["images"]
  except ValueError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"cannot read Cars3D npz file {path}: {e}") from e
  _check(arr, f"{path} key 'images'", f"uint8 (cars, {ELEVATIONS}, {AZIMUTHS}, H, W, 3)",
         arr.dtype == np.uint8 and arr.ndim == 6 and arr.shape[1:3] == (ELEVATIONS, AZIMUTHS)
         and arr.shape[-1] == 3)
  return arr


def load_mat(path: str) -> np.ndarray:
  """uint8 (ELEVATIONS, AZIMUTHS, H, W, 3) from one disentanglement_lib ``.mat`` file."""
  try:
    import scipy.io  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError("reading Cars3D .mat files needs scipy: pip install -e '.[mat]'") from e
  try:
    im = scipy.io.loadmat(path)["im"]
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"cannot read Cars3D file {path} (expected a .mat with key 'im'): {e}") from e
  _check(im, f"{path} key 'im'", f"uint8 (H, W, 3, {AZIMUTHS}, {ELEVATIONS})",
         im.dtype == np.uint8 and im.ndim == 5 and im.shape[2:] == (3, AZIMUTHS, ELEVATIONS))
  return np.einsum("hwcae->eahwc", im)


@functools.lru_cache(maxsize=1)  # the train and test splits read the same file
def load(path: str) -> np.ndarray:
  """uint8 (cars, ELEVATIONS, AZIMUTHS, H, W, 3) from an npz file or a folder of .mat files."""
  path = os.path.expanduser(str(path))
  if os.path.isfile(path):
    return load_npz(path)
  if not os.path.isdir(path):
    raise DataError(f"config.data.path={path!r}: no such file or folder (an .npz or a folder of .mat files)")
  mats = sorted((f for f in os.listdir(path) if f.endswith(".mat")), key=natural_key)
  if not mats:
    raise DataError(f"config.data.path={path!r}: no .mat files in the folder")
  cars = images.check_files([os.path.join(path, f) for f in mats], load_mat)
  shapes = {c.shape for c in cars}
  if len(shapes) != 1:
    raise DataError(f"config.data.path={path!r}: the .mat files hold renders of different sizes {shapes}")
  return np.stack(cars)


@register("cars3d", path="", test_cars=0)
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of Cars3D (see the module docstring)."""
  if split not in ("train", "test"):
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  renders = load(str(data_config.path))
  test_cars = data_config.test_cars
  if not isinstance(test_cars, int) or not 0 <= test_cars < len(renders):
    raise DataError(f"config.data.test_cars={test_cars!r} must be an int in [0, {len(renders)})")
  cars = np.arange(len(renders))
  if test_cars:
    cars = cars[len(renders) - test_cars:] if split == "test" else cars[:len(renders) - test_cars]
  car, elevation, azimuth = (g.ravel() for g in np.meshgrid(cars, np.arange(ELEVATIONS),
                                                             np.arange(AZIMUTHS), indexing="ij"))
  size = images.decode_size(data_config, split)
  channels = images.check_channels(data_config.channels)
  decode = lambda i: {"image": images.from_array(renders[car[i], elevation[i], azimuth[i]], size=size,
                                                 channels=channels),
                      "car": np.int32(car[i]), "elevation": np.int32(elevation[i]),
                      "azimuth": np.int32(azimuth[i])}
  examples = capped(lazy.Examples(range(len(car)), decode, what=f"cars3d {split}"), data_config, split)
  n = len(examples)  # the first n (capped): ground truth of every image, for evaluators
  extras = {"image/elevation": elevation[:n].astype(np.int32), "image/azimuth": azimuth[:n].astype(np.int32)}
  return Dataset(domains=examples.columns(), extras=extras, paired=True)
