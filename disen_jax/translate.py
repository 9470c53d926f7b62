"""Translate a folder of images with a trained run (``--mode=translate``), for every method with
``translate_<a>2<b>`` maps.

  python -m disen_jax.main --mode=translate --workdir=RUN --input=IN --output=OUT \
      --direction=a2b [--reference=IMAGE]

The run's ``config.json`` and newest checkpoint are loaded from ``RUN``; ``--direction`` is one
of the run's own translations (``uncoop`` and ``cyclegan``: ``v2c``, ``c2v``; ``cross_domain``:
``x2y``, ``y2x``). Every image in ``IN`` (any format pillow reads) is converted to the source
domain's channels, resized (shorter side) and center-cropped to the run's resolution, as in
training; images of another size are reported as resized. Outputs are PNGs with the input's base
name. ``--reference`` is an image of the target domain whose style every output takes, for
methods that have one to take: uncoop's ``c2v`` needs it (the lighting and background of a
photo); cross_domain takes the reference's exclusive part (else fixed noise); CycleGAN ignores it.
"""
from __future__ import annotations

import json
import os
import types

import ml_collections
import numpy as np
from PIL import Image

from disen_jax import checkpoint as ckptlib
from disen_jax import methods
from disen_jax.data import folders
from disen_jax.errors import ConfigError, DataError


def load_run(workdir: str):
  """Returns ``(config, method, state)`` of the newest checkpoint in ``workdir``; ``state`` holds
  the ``params`` and ``stats`` the maps use."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise DataError(f"--workdir={workdir}: no config.json (is it a training run's workdir?)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  method = methods.get(config.method)
  ckpt = ckptlib.Checkpointer(workdir)
  try:
    step = ckpt.latest_step()
    if step is None:
      raise DataError(f"--workdir={workdir}: no checkpoint under {ckpt.directory}")
    saved = ckpt.restore_arrays(step)
  finally:
    ckpt.close()
  return config, method, types.SimpleNamespace(params=saved["params"], stats=saved.get("stats") or {})


def _channels(config, domain: str) -> int:
  field = f"{domain}_channels"
  return config.model[field] if "model" in config and field in config.model else config.data.channels


def translate_folder(workdir: str, input_dir: str, output_dir: str, *, direction: str | None,
                     reference: str | None = None, batch_size: int = 16) -> list[str]:
  """Translates every image of ``input_dir`` into ``output_dir``; returns the written paths."""
  if not os.path.isdir(input_dir):
    raise DataError(f"--input={input_dir} is not a directory")
  config, method, state = load_run(workdir)
  spec = methods.spec(method, config)
  directions = methods.translations(methods.offered_maps(method, config, spec.domains))
  if direction not in directions:
    raise ConfigError(f"--direction={direction!r}: the run in {workdir} (method {config.method!r}) "
                      f"translates {sorted(directions) or 'nothing'}")
  src, dst = directions[direction]
  res = config.data.resolution
  paths = folders.list_images(input_dir)
  if not paths:
    raise DataError(f"--input={input_dir} has no images")
  images = folders.load_images(paths, res, _channels(config, src))  # names a bad file
  resized = [p for p in paths if Image.open(p).size != (res, res)]
  if resized:
    print(f"note: {len(resized)} of {len(paths)} images are not {res}x{res} and were resized "
          f"(shorter side) and center-cropped, e.g. {resized[0]}")
  ref = None if reference is None else folders.load_image(reference, res, _channels(config, dst))[None]
  translate = methods.maps(method, state, config)[f"translate_{direction}"]

  os.makedirs(output_dir, exist_ok=True)
  written = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    out = translate(chunk) if ref is None else translate(chunk, ref)
    for path, img in zip(paths[start:start + batch_size], np.asarray(out)):
      target = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
      folders.save_image(target, img)
      written.append(target)
  return written
