"""Image preprocessing shared by every source and the pipeline: one definition of each step.

Every image that enters training goes through the same steps, whatever it was read from (a file,
a tfds record, an npz array): converted to RGB or grayscale (``channels``), its shorter side
resized (bicubic) to ``size`` and center-cropped to a square, then scaled to float32 in [-1, 1].
At training time the pipeline may then random-crop images that were loaded larger than
``config.data.resolution`` (``config.data.load_size``, as pix2pix/CycleGAN do: load at 286,
crop 256) and flip them horizontally (``config.data.random_flip``).
"""
from __future__ import annotations

import concurrent.futures
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from disen_jax.errors import DataError

_MODES = {1: "L", 3: "RGB"}


def check_channels(channels, field: str = "config.data.channels") -> int:
  if channels not in _MODES:
    raise DataError(f"{field}={channels!r}: expected 1 (grayscale) or 3 (RGB)")
  return channels


def check_size(size, field: str = "config.data.resolution") -> int:
  if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
    raise DataError(f"{field}={size!r} must be a positive int")
  return int(size)


def decode_size(data_config, split: str) -> int:
  """The size a source decodes images at: ``config.data.load_size`` for the train split when set
  (the pipeline then random-crops to ``config.data.resolution``), else the resolution."""
  resolution = check_size(data_config.resolution)
  load = data_config.load_size
  if not load or split != "train":
    return resolution
  if check_size(load, "config.data.load_size") < resolution:
    raise DataError(f"config.data.load_size={load} must be >= config.data.resolution={resolution}")
  return load


def fit(img: Image.Image, size: int) -> Image.Image:
  """Shorter side resized to ``size`` (bicubic), then the centered ``size`` x ``size`` square."""
  w, h = img.size
  scale = size / min(w, h)
  new = (max(size, round(w * scale)), max(size, round(h * scale)))
  if new != (w, h):
    img = img.resize(new, Image.Resampling.BICUBIC)
  left, top = (new[0] - size) // 2, (new[1] - size) // 2
  return img.crop((left, top, left + size, top + size))


def to_float(pixels: np.ndarray) -> np.ndarray:
  """uint8 pixels -> float32 in [-1, 1]."""
  return np.asarray(pixels, np.float32) / 127.5 - 1.0


def from_pil(img: Image.Image, *, size: int, channels: int = 3) -> np.ndarray:
  """A PIL image as float32 [size, size, channels] in [-1, 1] (alpha dropped, gray replicated)."""
  img = fit(img.convert(_MODES[channels]), size)
  return to_float(np.asarray(img)).reshape(size, size, channels)


def from_array(pixels: np.ndarray, *, size: int, channels: int = 3, crop: int | None = None
               ) -> np.ndarray:
  """uint8 [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] pixels as float32 [size, size, channels].

  ``crop``: first keep the centered ``crop`` x ``crop`` square (e.g. CelebA's face region).
  """
  pixels = np.asarray(pixels)
  if pixels.ndim == 3 and pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4))):
    raise DataError(f"expected uint8 pixels [H, W(, 1|3|4)], got {pixels.dtype} {pixels.shape}")
  if crop:
    top, left = (pixels.shape[0] - crop) // 2, (pixels.shape[1] - crop) // 2
    if top < 0 or left < 0:
      raise DataError(f"crop={crop} is larger than the image {pixels.shape[:2]}")
    pixels = pixels[top:top + crop, left:left + crop]
  if pixels.shape[:2] == (size, size) and (pixels.ndim == 2) == (channels == 1):
    return to_float(pixels).reshape(size, size, channels)  # nothing to resample
  return from_pil(Image.fromarray(pixels), size=size, channels=channels)


def open_image(path: str) -> Image.Image:
  """The EXIF-rotated image at ``path`` (decoded); ``ValueError`` naming ``path`` if unreadable."""
  try:
    with Image.open(path) as img:
      img = ImageOps.exif_transpose(img)
      img.load()
      return img
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"cannot read image file {path}: {e}") from e


def header_size(path: str) -> tuple[int, int]:
  """(width, height) from the file header only; ``ValueError`` naming ``path`` if unreadable."""
  try:
    with Image.open(path) as img:
      return img.size
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f"cannot read image file {path}: {e}") from e


def check_files(paths: Sequence[str], check: Callable[[str], object] = header_size,
                max_workers: int | None = None) -> list:
  """Runs ``check`` (default: read the header) on every path with a thread pool, so that a bad
  file is reported by name before training starts rather than when its batch comes up."""
  with concurrent.futures.ThreadPoolExecutor(max_workers) as pool:
    return list(pool.map(check, paths))


def augmenter(*, size: int, flip: bool, paired: bool) -> Callable[[dict, np.random.Generator], dict]:
  """``augment(example, rng)``: random ``size`` crop of every image larger than ``size`` and, if
  ``flip``, a horizontal flip with probability 1/2. Paired domains share one crop and one flip
  (they show the same scene); unpaired domains draw their own. Non-image entries pass through."""

  def draw(shape, rng):
    h, w = shape[:2]
    top = int(rng.integers(0, h - size + 1)) if h > size else 0
    left = int(rng.integers(0, w - size + 1)) if w > size else 0
    return top, left, bool(flip and rng.integers(0, 2))

  def apply(img, params):
    top, left, mirror = params
    img = img[top:top + size, left:left + size]
    return np.ascontiguousarray(img[:, ::-1] if mirror else img)

  def augment(example: dict, rng: np.random.Generator) -> dict:
    names = sorted(k for k, v in example.items() if np.ndim(v) == 3)
    shared = draw(example[names[0]].shape, rng) if paired and names else None
    return {k: apply(v, shared or draw(v.shape, rng)) if k in names else v for k, v in example.items()}

  return augment
