"""Translate a folder of images with a trained run (``--mode=translate``).

  python -m disen_jax.main --mode=translate --workdir=RUN --input=IN --output=OUT \
      [--direction=v2c|c2v] [--residual_from=IMAGE]

The run's ``config.json`` and newest checkpoint are loaded from ``RUN``. Every image in ``IN``
(any format pillow reads) is converted to RGB, resized (shorter side) and center-cropped to the
run's resolution, as in training; images of another size are reported as resized. Outputs are
PNGs with the input's base name. ``c2v`` with ``uncoop`` needs a residual (lighting, background):
``--residual_from`` names the V image whose residual every output takes.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from disen_jax import checkpoint as ckptlib
from disen_jax import methods
from disen_jax.data import folders


def load_run(workdir: str):
  """Returns ``(config, method, state)`` of the newest checkpoint in ``workdir``."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--workdir={workdir}: no config.json (is it a training run's workdir?)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  method = methods.get(config.method)
  ckpt = ckptlib.Checkpointer(workdir)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"--workdir={workdir}: no checkpoint under {ckpt.directory}")
  res = config.data.resolution
  example = {d: jnp.zeros((1, res, res, config.model[f"{d}_channels"]), jnp.float32)
             for d in method.DOMAINS}
  abstract = jax.eval_shape(lambda: method.init(jax.random.PRNGKey(0), config, example))
  state = ckpt.restore(abstract)
  ckpt.close()
  return config, method, state


def translate_folder(workdir: str, input_dir: str, output_dir: str, *, direction: str = "v2c",
                     residual_from: str | None = None, batch_size: int = 16) -> list[str]:
  """Translates every image of ``input_dir`` into ``output_dir``; returns the written paths."""
  if direction not in ("v2c", "c2v"):
    raise ValueError(f"--direction={direction!r}: expected 'v2c' or 'c2v'")
  if not os.path.isdir(input_dir):
    raise FileNotFoundError(f"--input={input_dir} is not a directory")
  config, method, state = load_run(workdir)
  if config.model.kind != "resnet":
    raise ValueError(f"--mode=translate needs an image model; the run in {workdir} has "
                     f"config.model.kind={config.model.kind!r}")
  res = config.data.resolution
  paths = folders.list_images(input_dir)
  if not paths:
    raise ValueError(f"--input={input_dir} has no images")
  src = "v" if direction == "v2c" else "c"
  images = folders.load_images(paths, res, config.model[f"{src}_channels"])  # names a bad file
  resized = [p for p in paths if Image.open(p).size != (res, res)]
  if resized:
    print(f"note: {len(resized)} of {len(paths)} images are not {res}x{res} and were resized "
          f"(shorter side) and center-cropped, e.g. {resized[0]}")

  maps = method.maps(state, config)
  residual = None
  if direction == "c2v" and maps["residual"] is not None:
    if residual_from is None:
      raise ValueError(f"--direction=c2v with method {config.method!r} needs --residual_from=IMAGE "
                       "(a V image whose lighting and background the outputs take)")
    ref = folders.load_image(residual_from, res, config.model.v_channels)[None]
    residual = maps["residual"](ref)

  os.makedirs(output_dir, exist_ok=True)
  written = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    if direction == "v2c":
      out = maps["v2c"](chunk)
    else:
      r = None if residual is None else jax.tree_util.tree_map(
          lambda x: jnp.repeat(x, len(chunk), axis=0), residual)
      out = maps["c2v"](chunk, r)
    for path, img in zip(paths[start:start + batch_size], np.asarray(out)):
      dst = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
      folders.save_image(dst, img)
      written.append(dst)
  return written
