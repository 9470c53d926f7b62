"""The sanity check a user does after training on synthfaces: translate real face photos.

  python experiments/faces_real_photos.py --runs=uncoop:runs/uncoop_faces,cyclegan:runs/cyclegan_faces \
      --out=experiments/results/faces_real_photos

Writes the first ``--num`` of scikit-image's LFW faces (``skimage.data.lfw_subset()``: 25x25
grayscale crops of Labeled Faces in the Wild) as PNG files into ``OUT/lfw/``, translates that
folder with every run through the command-line path (``--mode=translate``'s
``translate_folder``, which converts grayscale to the run's channels and resizes), and writes
``OUT/translations.png``: the photos in the first row, each run's ``--direction`` outputs in the
rows below, and ``OUT/results.md`` naming the runs. No metric: real photos have no ground truth.
"""
from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from disen_jax import translate  # pylint: disable=g-import-not-at-top

_RUNS = flags.DEFINE_list("runs", None, "name:workdir pairs of trained runs", required=True)
_OUT = flags.DEFINE_string("out", None, "output directory", required=True)
_NUM = flags.DEFINE_integer("num", 16, "how many LFW faces")
_DIRECTION = flags.DEFINE_string("direction", "v2c", "the runs' translation to apply")


def main(argv):
  del argv
  import skimage.data  # pylint: disable=g-import-not-at-top
  # [n, 25, 25] in [0, 1]; the first 100 of the subset are faces
  faces = [Image.fromarray(np.uint8(np.round(f * 255)), "L") for f in skimage.data.lfw_subset()[:_NUM.value]]
  photos = os.path.join(_OUT.value, "lfw")
  os.makedirs(photos, exist_ok=True)
  for i, face in enumerate(faces):
    face.save(os.path.join(photos, f"lfw_{i:03d}.png"))

  runs = [item.split(":", 1) for item in _RUNS.value]
  rows = []
  for name, workdir in runs:
    written = translate.translate_folder(workdir, photos, os.path.join(_OUT.value, name),
                                         direction=_DIRECTION.value)
    rows.append([np.asarray(Image.open(p).convert("RGB")) for p in sorted(written)])

  size = rows[0][0].shape[0]
  inputs = [np.asarray(f.convert("RGB").resize((size, size), Image.BICUBIC)) for f in faces]
  grid = np.concatenate([np.concatenate(r, axis=1) for r in [inputs] + rows], axis=0)
  Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(
      os.path.join(_OUT.value, "translations.png"))
  with open(os.path.join(_OUT.value, "results.md"), "w") as f:
    f.write(f"# Real face photos through synthfaces-trained runs ({_DIRECTION.value})\n\n"
            f"`translations.png`, rows top to bottom: {_NUM.value} LFW photos (25x25 grayscale, "
            f"resized to {size} px), then {', '.join(n for n, _ in runs)}.\n\nRuns:\n\n")
    f.writelines(f"- {name}: `{workdir}`\n" for name, workdir in runs)
  print(os.path.join(_OUT.value, "translations.png"))


if __name__ == "__main__":
  app.run(main)
