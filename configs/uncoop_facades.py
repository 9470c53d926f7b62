"""Harley et al.'s facades experiment on your own unpaired images (source ``folders``).

V = photos, C = label maps, read from two folders (any common image format, resized and
center-cropped on load; a ``train``/``test`` subfolder is used when present). The default paths
point at the CMP Facades copy in ``../shared/data/facades``; for your own data:

  python -m disen_jax.main --config=configs/uncoop_facades.py:cpu --workdir=runs/mine \
      --config.data.folders.v=/path/to/photos --config.data.folders.c=/path/to/renders
"""
import os

from disen_jax.config_utils import sibling_config

_FACADES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                         "shared", "data", "facades"))


def get_config(arg: str | None = None):
  c = sibling_config(__file__, "uncoop_faces", arg)
  res = {"cpu": 64, "test": 16}
  resolution = next((res[a] for a in (arg or "").split(",") if a in res), 256)
  c.data = type(c.data)(dict(source="folders", folders={"v": os.path.join(_FACADES, "A"),
                                                         "c": os.path.join(_FACADES, "B")},
                             resolution=resolution, channels=3, paired=False, split_subdirs=None))
  c.num_steps = {256: 200 * 400 // 4, 64: 3000, 16: c.num_steps}[resolution]  # 200 epochs at 256
  c.batch_size = 4 if resolution == 256 else c.batch_size
  del c["eval"]
  return c
