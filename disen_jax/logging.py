"""Run outputs: metrics.jsonl, TensorBoard events, the progress line and PNG image grids.

Only process 0 writes; on other processes every writer is a no-op.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import jax
import numpy as np
from etils import epath
from PIL import Image


def is_writer() -> bool:
  return jax.process_index() == 0


def write_text(path: str, text: str) -> None:
  """Writes a whole file, locally or on ``gs://`` (epath)."""
  epath.Path(path).write_text(text)


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class MetricWriter:
  """Appends ``{"step", "split", ...}`` lines to ``metrics.jsonl`` and mirrors them to TensorBoard."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    self.active = is_writer()
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if self.active and tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, scalars: dict) -> None:
    if not self.active:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    line = json.dumps({"step": int(step), "split": split, **scalars}) + "\n"
    path = epath.Path(self.path)
    if "://" in self.path:  # object stores cannot append: rewrite the file
      path.write_text((path.read_text() if path.exists() else "") + line)
    else:
      with path.open("a") as f:
        f.write(line)
    if self._tb is not None:
      for k, v in scalars.items():
        self._tb.add_scalar(f"{split}/{k}", v, step)
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_evals(workdir: str, key: str) -> dict[str, dict[str, float]]:
  """``{step: {metric: value}}`` of a run's eval lines in ``metrics.jsonl`` that hold ``key``, in
  file order (a step evaluated twice, e.g. after a resume, keeps its last line)."""
  evals = {}
  for line in epath.Path(os.path.join(workdir, "metrics.jsonl")).read_text().splitlines():
    row = json.loads(line)
    if row["split"] == "eval" and key in row:
      evals[str(row["step"])] = {k: v for k, v in row.items() if k not in ("step", "split")}
  return evals


class Progress:
  """The terminal progress line: step, steps/s, ETA and the latest losses."""

  def __init__(self, total: int, start: int):
    self.total, self.start = total, start
    self.t0 = time.time()
    self.active = is_writer()
    self.phase = None  # shown when set (methods trained in phases)

  def update(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    elapsed = time.time() - self.t0
    done = step - self.start
    rate = done / elapsed if elapsed > 0 and done > 0 else float("nan")
    eta = (self.total - step) / rate if rate == rate and rate > 0 else float("nan")
    losses = " ".join(f"{k}={float(v):.4g}" for k, v in sorted(scalars.items()))
    phase = f" ({self.phase})" if self.phase else ""
    print(f"step {step}/{self.total}{phase} | {rate:.2f} steps/s | ETA {_fmt_time(eta)} | {losses}",
          file=sys.stdout, flush=True)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] float images -> uint8; one-channel images become RGB."""
  images = np.asarray(images, np.float32)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
  """Tiles rows of [n, H, W, C] images (all the same H, W) into one uint8 image."""
  rows = [to_uint8(r) for r in rows]
  n = max(len(r) for r in rows)
  h, w = rows[0].shape[1:3]
  grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
  for i, row in enumerate(rows):
    for j, img in enumerate(row):
      y, x = pad + i * (h + pad), pad + j * (w + pad)
      grid[y:y + h, x:x + w] = img
  return grid


def save_png(path: str, image: np.ndarray) -> None:
  if not is_writer():
    return
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("wb") as f:
    Image.fromarray(image).save(f, format="PNG")


def save_grid(path: str, named_rows: dict[str, np.ndarray]) -> bool:
  """Saves image rows (4-D arrays only; vector samples are skipped). Returns whether it wrote."""
  rows = [np.asarray(r) for r in named_rows.values() if np.ndim(r) == 4]
  if not rows:
    return False
  save_png(path, image_grid(rows))
  return True
