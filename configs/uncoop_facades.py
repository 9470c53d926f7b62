"""Harley et al.'s facades experiment on your own unpaired images (source ``folders``).

V = photos, C = label maps, read from two folders (any common image format, resized and
center-cropped on load; a ``train``/``test`` subfolder is used when present). The default paths
point at the CMP Facades copy in ``../shared/data/facades``; for your own data:

  python -m disen_jax.main --config=configs/uncoop_facades.py:cpu --workdir=runs/mine \
      --config.data.folders.v=/path/to/photos --config.data.folders.c=/path/to/renders

There is no ground truth in such folders: the run is scored by cycle consistency (``cycle``).
"""
import ml_collections

from disen_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = config_lib.variants(arg, ("cpu", "test", "cooperative"), __file__)
  c = config_lib.sibling(__file__, "uncoop_faces", arg)
  c.evals = ("cycle",)
  c.data = config_lib.data("folders")
  c.data.folders = {"v": config_lib.shared_data(__file__, "facades", "A"),
                    "c": config_lib.shared_data(__file__, "facades", "B")}
  c.data.resolution = 64 if "cpu" in v else 16 if "test" in v else 256
  if not {"cpu", "test"} & v:
    c.num_steps = 200 * 400 // 4  # 200 epochs of the 400 photos
  elif "cpu" in v:
    c.num_steps = 3000
  if "test" in v:
    c.eval.cycle.num_images = 8
  return c
