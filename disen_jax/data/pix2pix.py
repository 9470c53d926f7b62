"""pix2pix's paired datasets, stored side by side: every image is ``[A | B]``, two halves of equal
width (edges2shoes, edges2handbags, facades, maps, cityscapes as pix2pix's download script gives
them; tfds has none of these in this form).

Config (``config.data``)::

  source = "pix2pix"
  path = "/data/edges2shoes"   # holds train/ and val/ (and test/) folders of jpgs
  resolution = 64              # each half is resized (shorter side) and center-cropped
  channels = 3

Domains (paired): ``a`` = the left half (edges2shoes: the edges; facades: the photo), ``b`` = the
right half (the shoe photo; the facade's label map). The train split reads ``path/train``, the
test split ``path/test``, or ``path/val`` where there is no test folder (edges2shoes). Images are
decoded lazily in the input pipeline; every file's header is read up front, and a file that is not
twice as wide as tall, unreadable, or a missing folder is an error naming it.
"""
from __future__ import annotations

import os

from disen_jax.data import Dataset, capped, images, lazy, register
from disen_jax.data.folders import list_images
from disen_jax.errors import DataError

SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}


def split_folder(path: str, split: str) -> str:
  if split not in SPLIT_FOLDERS:
    raise DataError(f"unknown split {split!r}; expected one of {sorted(SPLIT_FOLDERS)}")
  if not os.path.isdir(path):
    raise DataError(f"config.data.path={path!r}: folder does not exist")
  for name in SPLIT_FOLDERS[split]:
    if os.path.isdir(os.path.join(path, name)):
      return os.path.join(path, name)
  raise DataError(f"config.data.path={path!r}: no {' or '.join(SPLIT_FOLDERS[split])} folder for "
                   f"the {split} split")


def _check_side_by_side(path: str) -> None:
  w, h = images.header_size(path)
  if w != 2 * h:
    raise DataError(f"{path}: {w}x{h} is not two square halves side by side (width must be "
                     f"twice the height)")


def halves(path: str, *, size: int, channels: int) -> dict:
  """``{"a": left half, "b": right half}`` of the image at ``path``, each [size, size, channels]."""
  img = images.open_image(path)
  w, h = img.size
  left, right = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))
  return {"a": images.from_pil(left, size=size, channels=channels),
          "b": images.from_pil(right, size=size, channels=channels)}


@register("pix2pix", path="")
def build(data_config, split: str) -> Dataset:
  """Split ``split`` of a side-by-side pix2pix dataset (see the module docstring)."""
  folder = split_folder(os.path.expanduser(str(data_config.path)), split)
  paths = list_images(folder)
  if not paths:
    raise DataError(f"config.data.path: no images in {folder!r}")
  images.check_files(paths, _check_side_by_side)
  size = images.decode_size(data_config, split)
  channels = images.check_channels(data_config.channels)
  examples = lazy.Examples(paths, lambda p: halves(p, size=size, channels=channels), what=folder)
  return Dataset(domains=capped(examples, data_config, split).columns(), paired=True)

