"""COIL-20 (Nene, Nayar & Murase, Columbia 1996): 20 objects on a turntable, 72 grayscale views
each, 5 degrees apart; a class/content dataset with exact ground truth (class = object, content
= pose: the view of any object at any pose exists).

``config.data.path`` is an ``.npz`` with keys ``images`` uint8 ``(n, H, W)`` or ``(n, H, W, 1)``
and ``labels`` int ``(n,)`` (the object), every object's 72 views in turntable order, e.g.
``../shared/data/coil20/coil20_32.npz``. The pose of a view is its rank among its object's views.

Domains (paired): ``image`` (resized to ``config.data.resolution``, ``config.data.channels``),
``object`` and ``pose`` (int32); ``pose`` also as ground truth of ``image`` (``extras["image/pose"]``),
which stays with the images when ``config.data.domains`` picks them alone. Objects are kept in
label order, so ``config.data.num_train`` = k * 72 trains on the first k objects.
``config.data.test_objects = k`` holds the last k objects out as the test split (0: the test split
is the train split, as Cars3D's). A file with the wrong keys, shape or dtype, or objects with
different numbers of views, is an error naming it.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from disen_jax.data import Dataset, capped, images, lazy, register
from disen_jax.errors import DataError


@functools.lru_cache(maxsize=1)  # the train and test splits read the same file
def load(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(images uint8 (n, H, W), object (n,), pose (n,))``, sorted by object then pose."""
  path = os.path.expanduser(str(path))
  if not os.path.isfile(path):
    raise DataError(f"config.data.path={path!r}: no such file (an .npz with keys 'images', 'labels')")
  try:
    with np.load(path) as f:
      missing = {"images", "labels"} - set(f.keys())
      if missing:
        raise DataError(f"{path}: no key(s) {sorted(missing)} (keys: {sorted(f.keys())})")
      pixels, labels = f["images"], f["labels"]
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"cannot read COIL-20 npz file {path}: {e}") from e
  if pixels.ndim == 4 and pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  if pixels.dtype != np.uint8 or pixels.ndim != 3 or labels.shape != (len(pixels),):
    raise DataError(f"{path}: expected 'images' uint8 (n, H, W) and 'labels' (n,), got "
                    f"{pixels.dtype} {pixels.shape} and {labels.shape}")
  order = np.argsort(labels, kind="stable")  # views keep their turntable order within an object
  pixels, labels = pixels[order], labels[order].astype(np.int32)
  objects, counts = np.unique(labels, return_counts=True)
  if len(set(counts.tolist())) != 1:
    raise DataError(f"{path}: objects have different numbers of views "
                    f"({dict(zip(objects.tolist(), counts.tolist()))})")
  obj = np.searchsorted(objects, labels).astype(np.int32)  # 0..K-1 whatever the file's labels
  pose = (np.arange(len(labels)) % counts[0]).astype(np.int32)
  return pixels, obj, pose


@register("coil20", path="", test_objects=0)
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of COIL-20 (see the module docstring)."""
  if split not in ("train", "test"):
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  pixels, obj, pose = load(str(data_config.path))
  num_objects, k = int(obj.max()) + 1, data_config.test_objects
  if not isinstance(k, int) or not 0 <= k < num_objects:
    raise DataError(f"config.data.test_objects={k!r} must be an int in [0, {num_objects})")
  keep = np.arange(len(obj))
  if k:
    held = obj >= num_objects - k
    keep = keep[held] if split == "test" else keep[~held]
  size = images.decode_size(data_config, split)
  channels = images.check_channels(data_config.channels)
  decode = lambda i: {"image": images.from_array(pixels[i], size=size, channels=channels),
                      "object": obj[i], "pose": pose[i]}
  examples = capped(lazy.Examples(keep, decode, what=f"coil20 {split}"), data_config, split)
  n = len(examples)  # the first n (capped): ground truth of every image, for evaluators
  return Dataset(domains=examples.columns(), extras={"image/pose": pose[keep[:n]]}, paired=True)
