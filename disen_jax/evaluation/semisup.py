"""Scores and figures of semi-supervised generation (Hinz & Wermter 2018), on the test split.

Needs the maps ``encode_x(x) -> (u, class probabilities, continuous)`` and ``decode_x(u, c_cat,
c_cont)`` (those of ``methods.semisup``) and the class of every test image (``x/label``).
Settings: ``config.eval.semisup`` (``DEFAULTS``).

* ``generator_error``: the paper's generator error. ``per_class`` images are generated for every
  class k with the categorical code fixed to k (u and the continuous codes drawn from the prior,
  a fixed seed) and classified by a CNN that the library trains itself (``metrics.train_classifier``)
  on the *training* split with all its labels (the paper's classifier was trained on MNIST's
  training set too); the error is the fraction of images not classified as their k.
* ``classifier_accuracy``: that classifier's accuracy on the test split (the paper's: 99.43 %):
  the generator error cannot be trusted below ~1 - this.
* ``encoder_accuracy``: the argmax of E's categorical head against the test labels.

The classifier is trained once and cached (``cache_dir``, default ``<workdir>/eval_cache``), under
a name that holds what it was trained on (source, resolution, channels, training examples, steps).

Figures (under ``workdir/samples``, tagged with the step), the paper's Figs. 3-5:

* ``classes``: one row per u (fixed along the row), one column per class;
* ``continuous_<j>``: continuous variable j swept over [-2, 2] (columns) for each class (rows),
  u and the other continuous variables fixed;
* ``translations``: test images (first column), then each re-generated with its u and continuous
  code and the categorical code set to every class in turn;
* ``interpolations``: pairs of test images at the ends, the full codes interpolated between them.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from disen_jax import data as datalib
from disen_jax import logging as loglib
from disen_jax.data import Dataset
from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.cross_domain import batched

DEFAULTS = dict(per_class=500, classifier_steps=3000, classifier_batch=64, cache_dir="", batch_size=500,
                num_show=10, interp_steps=8, seed=0)


def needs(spec, config) -> Needs:
  del spec, config
  return Needs(maps=("encode_x", "decode_x"), domains=("x",), fields=("x/label",))


def classifier(config, workdir: str | None, num_classes: int):
  """The evaluation classifier of ``config.data``'s training split: ``(params, apply_fn)``."""
  ev, d = config.eval.semisup, config.data
  train = datalib.build(d, "train")
  images, labels = np.asarray(train.domains["x"]), np.asarray(train.extras["x/label"])
  kwargs = dict(steps=ev.classifier_steps, batch_size=ev.classifier_batch, seed=0)
  source = str(d.source).replace("/", "_")
  name = (f"classifier_{source}_{d.resolution}px_{images.shape[-1]}ch_{len(images)}train_"
          f"{ev.classifier_steps}steps.msgpack")
  return metrics.get_or_train_classifier(metrics.cache_path(ev, workdir, name), images, labels,
                                         num_classes, **kwargs)


def code_sizes(maps, x) -> tuple[int, int, int]:
  """``(noise, classes, continuous)`` sizes of the encoder's code (shapes only: nothing runs)."""
  u, cat, cont = jax.eval_shape(maps["encode_x"], jax.ShapeDtypeStruct((1, *np.shape(x)[1:]), np.float32))
  return u.shape[-1], cat.shape[-1], cont.shape[-1]


def generate_per_class(maps, sizes, per_class: int, *, seed: int, batch_size: int):
  """``per_class`` images of every class (categorical code fixed, the rest from the prior):
  returns ``(images, classes)``."""
  noise, classes, continuous = sizes
  n = per_class * classes
  k_u, k_c = jax.random.split(jax.random.PRNGKey(seed))
  u = np.asarray(jax.random.uniform(k_u, (n, noise), minval=-1.0, maxval=1.0))
  cont = np.asarray(jax.random.uniform(k_c, (n, continuous), minval=-1.0, maxval=1.0))
  target = np.repeat(np.arange(classes), per_class)
  cat = np.eye(classes, dtype=np.float32)[target]
  return batched(maps["decode_x"], u, cat, cont, size=batch_size), target


def evaluate(maps, test_ds: Dataset, *, config, workdir: str | None = None,
             step: int | None = None) -> dict[str, float]:
  ev = config.eval.semisup
  x, labels = test_ds.domains["x"], np.asarray(test_ds.extras["x/label"])
  sizes = code_sizes(maps, x)
  params, apply_fn = classifier(config, workdir, sizes[1])
  probs = batched(lambda v: maps["encode_x"](v)[1], x, size=ev.batch_size)
  images, target = generate_per_class(maps, sizes, ev.per_class, seed=ev.seed, batch_size=ev.batch_size)
  out = {
      "generator_error": 1.0 - metrics.classifier_accuracy(params, apply_fn, images, target),
      "classifier_accuracy": metrics.classifier_accuracy(params, apply_fn, x, labels),
      "encoder_accuracy": float(np.mean(np.argmax(probs, 1) == labels)),
  }
  if workdir is not None and step is not None:
    save_figures(maps, test_ds, config, os.path.join(workdir, "samples"), suffix=f"_{step:08d}")
  return out


# ----------------------------------------------------------------------------- figures


def _lerp(a, b, n: int) -> np.ndarray:
  t = np.linspace(0.0, 1.0, n).reshape((n,) + (1,) * np.ndim(a))
  return (1.0 - t) * a[None] + t * b[None]


def save_figures(maps, test_ds: Dataset, config, directory: str, suffix: str = "") -> list[str]:
  """Writes the class, continuous, translation and interpolation grids; returns their paths."""
  ev = config.eval.semisup
  x = np.asarray(test_ds.domains["x"][:ev.num_show])
  n = len(x)
  noise, classes, continuous = code_sizes(maps, x)
  eye = np.eye(classes, dtype=np.float32)
  rng = np.random.default_rng(ev.seed)
  written = []

  def save(name, rows):
    path = os.path.join(directory, f"{name}{suffix}.png")
    loglib.save_png(path, loglib.image_grid([np.asarray(r) for r in rows]))
    written.append(path)

  decode = lambda u, cat, cont: np.asarray(maps["decode_x"](u, cat, cont))
  u = rng.uniform(-1, 1, (n, noise)).astype(np.float32)
  cont0 = np.zeros((classes, continuous), np.float32)
  save("classes", [decode(np.repeat(u[i:i + 1], classes, 0), eye, cont0) for i in range(n)])

  values = np.linspace(-2.0, 2.0, ev.num_show).astype(np.float32)
  fixed = rng.uniform(-1, 1, (1, continuous)).astype(np.float32)
  for j in range(continuous):
    rows = []
    for k in range(classes):
      cont = np.repeat(fixed, len(values), 0)
      cont[:, j] = values
      rows.append(decode(np.repeat(u[:1], len(values), 0), np.repeat(eye[k:k + 1], len(values), 0), cont))
    save(f"continuous_{j}", rows)

  eu, ecat, econt = (np.asarray(a) for a in maps["encode_x"](x))
  save("translations", [np.concatenate([x[i:i + 1], decode(np.repeat(eu[i:i + 1], classes, 0), eye,
                                                           np.repeat(econt[i:i + 1], classes, 0))])
                        for i in range(n)])

  rows = []
  for a in range(0, n - 1, 2):
    b = a + 1
    path = [_lerp(p[a], p[b], ev.interp_steps) for p in (eu, ecat, econt)]
    rows.append(np.concatenate([x[a:a + 1], decode(*path), x[b:b + 1]]))
  if rows:
    save("interpolations", rows)
  return written
