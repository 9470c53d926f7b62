"""Class/content disentanglement measured against ground truth (LORD's Tables 1 and 2, Fig. 2).

For a method whose ``encode_<d>(x)`` returns ``(class code, content code)`` and whose
``decode_<d>(class code, content code)`` renders them (``methods.lord``), on a split whose
images carry their class (``<d>/label``) and the ground truth of their content
(``config.eval.class_content.content_fields``, e.g. Cars3D's ``elevation`` and ``azimuth``:
``<d>/elevation``, ``<d>/azimuth``). Settings: ``config.eval.class_content`` (``DEFAULTS``).

* Leakage probes (``leakage_probes``, the paper's Table 2): an MLP classifier is trained on the
  codes of a random ``probe_fraction`` of the split's images and tested on the others (never on
  its training codes): ``probe_class_from_content`` (class from content codes: low = no class in
  the content code) and ``probe_content_from_class`` (the content label, i.e. the combination of
  the content fields, from class codes), each beside its chance level (``chance_class``,
  ``chance_content``: the probe-test accuracy of always answering the probe-train's most common
  label) and beside the matching code's accuracy (``probe_class_from_class``,
  ``probe_content_from_content``), which shows the probe can learn. The classes must recur
  across the two halves, so the probe runs within one split (seen classes: the training split;
  unseen: the held-out one), split by image.
* Content transfer (``transfer_error``, Table 1's analogue with exact ground truth): for random
  pairs (i, j) of images of different classes, ``decode(class code of x_i, content code of x_j)``
  against the real image of x_i's class at x_j's content: ``transfer_l1`` (mean absolute error,
  pixels in [-1, 1]), ``transfer_psnr``, ``transfer_ssim``; ``copy_*`` score x_j itself against
  the same target (a method that ignores the class). LPIPS needs pretrained weights: not here.
* Figure (``transfer_grid``): the paper's Fig. 2, a row per class image, a column per content
  image, written to ``samples/class_content_<step>.png``.
"""
from __future__ import annotations

import os

import numpy as np

from disen_jax import logging as loglib
from disen_jax.errors import ConfigError
from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.cross_domain import batched

DEFAULTS = dict(domain="x", content_fields=(), probe_fraction=0.5, probe_steps=2000, num_pairs=1024,
                grid=8, batch_size=256, seed=0)


def needs(spec, config) -> Needs:
  ev = config.eval.class_content
  if not ev.content_fields:
    raise ConfigError("config.eval.class_content.content_fields is empty: name the ground-truth "
                      "fields of the content (e.g. ('elevation', 'azimuth') on Cars3D)")
  d = ev.domain
  return Needs(maps=(f"encode_{d}", f"decode_{d}"), domains=(d,),
               fields=(f"{d}/label",) + tuple(f"{d}/{f}" for f in ev.content_fields))


def content_labels(*fields) -> np.ndarray:
  """One integer per distinct combination of the content ``fields`` (arrays [n])."""
  rows = np.stack([np.asarray(f) for f in fields], axis=1)
  return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int32)


def probe_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """A random ``(train, test)`` partition of ``range(n)``, ``fraction`` of it for training."""
  order = np.random.default_rng(seed).permutation(n)
  cut = int(round(fraction * n))
  if not 0 < cut < n:
    raise ConfigError(f"config.eval.class_content.probe_fraction={fraction} leaves an empty probe "
                      f"train or test set of {n} examples")
  return order[:cut], order[cut:]


def chance(train_labels, test_labels) -> float:
  """Accuracy on ``test_labels`` of always answering the most common of ``train_labels``."""
  values, counts = np.unique(train_labels, return_counts=True)
  return float(np.mean(np.asarray(test_labels) == values[np.argmax(counts)]))


def probe_accuracy(codes, labels, train, test, *, steps: int, seed: int = 0) -> float:
  """An MLP (``metrics.train_classifier``) trained on ``codes[train]`` (standardized with their
  statistics) to predict ``labels[train]``, scored on ``codes[test]``."""
  codes = np.asarray(codes, np.float32).reshape(len(codes), -1)
  mean, std = codes[train].mean(0), codes[train].std(0)
  codes = (codes - mean) / np.where(std > 0, std, 1.0)
  params, apply_fn = metrics.train_classifier(codes[train], labels[train], int(np.max(labels)) + 1,
                                              seed=seed, steps=steps)
  return metrics.classifier_accuracy(params, apply_fn, codes[test], labels[test])


def leakage_probes(class_codes, content_codes, labels, contents, *, steps: int, fraction: float = 0.5,
                   seed: int = 0) -> dict[str, float]:
  """The four probes and the two chance levels (see the module docstring)."""
  labels, contents = np.asarray(labels), np.asarray(contents)
  train, test = probe_split(len(labels), fraction, seed)
  probe = lambda codes, y: probe_accuracy(codes, y, train, test, steps=steps, seed=seed)
  return {"probe_class_from_content": probe(content_codes, labels),
          "probe_class_from_class": probe(class_codes, labels),
          "probe_content_from_class": probe(class_codes, contents),
          "probe_content_from_content": probe(content_codes, contents),
          "chance_class": chance(labels[train], labels[test]),
          "chance_content": chance(contents[train], contents[test])}


def transfer_pairs(labels, contents, num_pairs: int, seed: int = 0):
  """``(i, j, target)`` index arrays: ``num_pairs`` random pairs of images of different classes
  whose target (x_i's class at x_j's content) exists in the split."""
  labels, contents = np.asarray(labels), np.asarray(contents)
  where = {(int(l), int(c)): k for k, (l, c) in enumerate(zip(labels, contents))}
  rng = np.random.default_rng(seed)
  i, j = rng.integers(0, len(labels), (2, 4 * num_pairs))
  target = np.array([where.get((int(labels[a]), int(contents[b])), -1) for a, b in zip(i, j)])
  keep = np.flatnonzero((labels[i] != labels[j]) & (target >= 0))[:num_pairs]
  if not len(keep):
    raise ValueError("no transfer pair: the split needs two classes sharing a content value")
  return i[keep], j[keep], target[keep]


def _scores(pred, target, prefix: str) -> dict[str, float]:
  return {f"{prefix}_l1": float(np.mean(np.abs(np.asarray(pred, np.float64) - target))),
          f"{prefix}_psnr": metrics.psnr(pred, target), f"{prefix}_ssim": metrics.ssim(pred, target)}


def transfer_error(transfer, images, labels, contents, *, num_pairs: int, seed: int = 0,
                   batch_size: int = 256) -> dict[str, float]:
  """``transfer(class images, content images)`` against the exact targets, and x_j's copy."""
  images = np.asarray(images)
  i, j, target = transfer_pairs(labels, contents, num_pairs, seed)
  pred = batched(transfer, images[i], images[j], size=batch_size)
  return {**_scores(pred, images[target], "transfer"), **_scores(images[j], images[target], "copy")}


def transfer_grid(transfer, class_images, content_images) -> np.ndarray:
  """Fig. 2: the grid as rows of images; row 0 = a blank then the content images, row k = the
  class image k then its transfers to every content image."""
  class_images, content_images = np.asarray(class_images), np.asarray(content_images)
  blank = np.ones_like(content_images[:1])
  rows = [np.concatenate([blank, content_images])]
  for c in class_images:
    out = np.asarray(transfer(np.repeat(c[None], len(content_images), 0), content_images))
    rows.append(np.concatenate([c[None], out]))
  return np.stack(rows)


def grid_examples(labels, count: int, seed: int = 0):
  """Indices of ``count`` class images (distinct classes) and ``count`` content images."""
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  firsts = np.unique(labels, return_index=True)[1]
  classes = rng.choice(firsts, min(count, len(firsts)), replace=False)
  return np.sort(classes), np.sort(rng.choice(len(labels), count, replace=False))


def maps_transfer(maps, domain: str):
  """The transfer of a method's ``encode_<d>``/``decode_<d>`` maps."""
  return lambda a, b: maps[f"decode_{domain}"](maps[f"encode_{domain}"](a)[0], maps[f"encode_{domain}"](b)[1])


def evaluate(maps, test_ds, *, config, workdir=None, step=None) -> dict[str, float]:
  ev = config.eval.class_content
  d = ev.domain
  images, labels = np.asarray(test_ds.domains[d]), np.asarray(test_ds.extras[f"{d}/label"])
  contents = content_labels(*(test_ds.extras[f"{d}/{f}"] for f in ev.content_fields))
  class_codes, content_codes = batched(maps[f"encode_{d}"], images, size=ev.batch_size)
  out = leakage_probes(class_codes, content_codes, labels, contents, steps=ev.probe_steps,
                       fraction=ev.probe_fraction, seed=ev.seed)
  transfer = maps_transfer(maps, d)
  out.update(transfer_error(transfer, images, labels, contents, num_pairs=ev.num_pairs, seed=ev.seed,
                            batch_size=ev.batch_size))
  if workdir is not None:
    classes, content = grid_examples(labels, ev.grid, ev.seed)
    grid = transfer_grid(transfer, images[classes], images[content])
    loglib.save_grid(os.path.join(workdir, "samples", f"class_content_{step or 0:08d}.png"),
                     dict(enumerate(grid)))
  return out
