"""The ``folders`` source: a user's own images, one folder per domain.

Config (``config.data``)::

  source = "folders"
  folders = {"v": "/data/facades/A", "c": "/data/facades/B"}  # domain name -> folder
  resolution = 64          # square output size
  paired = False           # optional: pair files by name across domains
  channels = 3             # optional: 3 (RGB) or 1 (grayscale)
  split_subdirs = None     # optional: None = use <folder>/<split> if it exists, else <folder>;
                           #           True = require <folder>/<split>; False = always <folder>

Only the image files directly inside a folder are read (not recursive, so ``A/train`` and
``A/test`` never mix); anything pillow can decode counts: jpg/jpeg, png, bmp, gif (first frame),
webp, tif/tiff by their extension, and a file with any other name (public face sets ship images
without an extension) when pillow recognises its header. Hidden files are skipped. Files are
ordered by natural sort (``2.jpg`` before ``10.jpg``).

Each image is EXIF-rotated, converted to RGB (alpha dropped, grayscale replicated) or to one
channel, its shorter side resized to ``resolution`` (bicubic) and center-cropped to a
``resolution`` x ``resolution`` square, then scaled to float32 in [-1, 1] (``images.py``; with
``load_size`` set, train images are decoded at that size and random-cropped by the pipeline).
The train split is decoded lazily, one image at a time in the input pipeline's threads, so a
folder of any size fits; other splits are decoded whole (``data.build``). Every problem (missing
folder or split, empty folder, unreadable file, unmatched pair) raises a ``ValueError`` naming
the config field or file before any training starts: every file's header is read up front.
"""
from __future__ import annotations

import os
import re
from typing import Mapping

import numpy as np
from PIL import Image

from disen_jax.data import Dataset, images, lazy, register
from disen_jax.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def natural_key(name: str):
  return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _is_image(path: str) -> bool:
  """A known extension, or a header pillow recognises (it reads only the first bytes)."""
  if path.lower().endswith(IMAGE_EXTENSIONS):
    return True
  try:
    with Image.open(path):
      return True
  except (OSError, ValueError, Image.DecompressionBombError):
    return False


def list_images(folder: str) -> list[str]:
  """Paths of the image files directly inside ``folder`` (not recursive), natural-sorted."""
  names = [f for f in os.listdir(folder)
           if not f.startswith(".") and os.path.isfile(os.path.join(folder, f))
           and _is_image(os.path.join(folder, f))]
  return [os.path.join(folder, f) for f in sorted(names, key=natural_key)]


def _seen(folder: str, limit: int = 5) -> str:
  """What a folder without images holds, for the error: its first few names."""
  names = sorted((f for f in os.listdir(folder) if not f.startswith(".")), key=natural_key)
  if not names:
    return "it is empty"
  more = f", ... ({len(names)} in all)" if len(names) > limit else ""
  return f"it holds {', '.join(names[:limit])}{more}"


def load_image(path: str, resolution: int, channels: int = 3) -> np.ndarray:
  """One image as float32 [resolution, resolution, channels] in [-1, 1].

  Shorter side resized to ``resolution`` (bicubic), then center-cropped; RGB (alpha dropped)
  or grayscale for ``channels=1``. Raises ``ValueError`` naming ``path`` if it cannot be read.
  """
  images.check_channels(channels, "channels")
  return images.from_pil(images.open_image(path), size=resolution, channels=channels)


def save_image(path: str, array) -> None:
  """Writes an [H, W], [H, W, 1] or [H, W, 3] image (float in [-1, 1], or uint8) to ``path``.

  The format follows the extension (png, jpg, ...); parent folders are created.
  """
  arr = np.asarray(array)
  if arr.dtype != np.uint8:
    arr = np.round((np.clip(arr, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
    raise DataError(f"save_image needs [H, W], [H, W, 1] or [H, W, 3], got {np.shape(array)}")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(arr).save(path)


def load_images(paths: list[str], resolution: int, channels: int = 3,
                max_workers: int | None = None) -> np.ndarray:
  """``load_image`` over ``paths`` with a thread pool: float32 [len(paths), R, R, channels]."""
  return np.stack(images.check_files(paths, lambda p: load_image(p, resolution, channels), max_workers))


def _resolve_folder(domain: str, folder: str, split: str, split_subdirs) -> str:
  field = f"config.data.folders.{domain}"
  if not os.path.isdir(folder):
    raise DataError(f"{field}={folder!r}: folder does not exist")
  sub = os.path.join(folder, split)
  if split_subdirs is None:
    return sub if os.path.isdir(sub) else folder
  if split_subdirs:
    if not os.path.isdir(sub):
      raise DataError(f"{field}={folder!r}: split folder {sub!r} does not exist "
                       f"(config.data.split_subdirs=True)")
    return sub
  return folder


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _pair(files: Mapping[str, list[str]], folders: Mapping[str, str]) -> dict[str, list[str]]:
  """Paired domains must hold the same file names (extensions may differ); aligns them by name."""
  by_stem = {}
  for d, paths in files.items():
    by_stem[d] = {_stem(p): p for p in paths}
    if len(by_stem[d]) != len(paths):
      dup = next(p for p in paths if [_stem(q) for q in paths].count(_stem(p)) > 1)
      raise DataError(f"config.data.paired=True but {folders[d]!r} (config.data.folders.{d}) "
                       f"holds several files named {_stem(dup)!r}.*")
  d0 = next(iter(files))
  for d1 in files:
    for a, b in ((d0, d1), (d1, d0)):
      missing = [p for p in files[a] if _stem(p) not in by_stem[b]]
      if missing:
        raise DataError(f"config.data.paired=True but {missing[0]} (config.data.folders.{a}) has "
                         f"no file of the same name in {folders[b]!r} (config.data.folders.{b})")
  return {d: [by_stem[d][_stem(p)] for p in files[d0]] for d in files}


@register("folders", folders={}, paired=False, split_subdirs=bool)
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of every domain in ``data_config.folders``, decoded lazily (see the module
  docstring)."""
  folders = data_config.folders
  if not folders or not hasattr(folders, "items"):
    raise DataError("config.data.folders must map domain names to image folders, "
                     f"e.g. {{'v': '/data/A', 'c': '/data/B'}}; got {folders!r}")
  size = images.decode_size(data_config, split)
  channels = images.check_channels(data_config.channels)
  paired = bool(data_config.paired)
  split_subdirs = data_config.split_subdirs

  # Validate everything cheap (folders, listings, pairing, file headers) before decoding.
  dirs, files = {}, {}
  for domain, folder in folders.items():
    dirs[domain] = _resolve_folder(domain, os.path.expanduser(str(folder)), split, split_subdirs)
    files[domain] = list_images(dirs[domain])
    if not files[domain]:
      raise DataError(f"config.data.folders.{domain}: no images (files pillow can read) in "
                       f"{dirs[domain]!r}: {_seen(dirs[domain])}")
  if paired:
    files = _pair(files, dirs)
  images.check_files([p for paths in files.values() for p in paths])
  load = lambda path: load_image(path, size, channels)
  if paired:
    names = list(files)
    examples = lazy.Examples(list(zip(*files.values())), lambda ps: dict(zip(names, map(load, ps))),
                             what=f"config.data.folders ({split})")
    return Dataset(domains=examples.columns(), paired=True)
  domains = {d: lazy.Examples(paths, lambda p: {"image": load(p)}, what=dirs[d]).columns()["image"]
             for d, paths in files.items()}
  return Dataset(domains=domains)
