"""Scores and figures of cross-domain disentanglement (Gonzalez-Garcia et al.), on the test split.

Needs maps ``encode_x``/``encode_y`` -> (S, E) and ``decode_x``/``decode_y`` (those of
``methods.cross_domain``) and a paired test split with domains ``x``, ``y``; class labels
(``x/label``) and the exact masks and colours of colored MNIST are used where the split has them.
Settings: ``config.eval.cross_domain`` (``DEFAULTS``).

* ``recall@1/<features>/<direction>``: cross-domain retrieval as the paper measures it. Every
  test x queries the test y's (``x2y``; ``y2x`` the other way) by Euclidean distance on the
  shared features S, on the exclusive features E, or on the raw pixels. Where the test split has
  class labels (``extras["x/label"]``: MNIST-CD/CB), a query scores when its nearest key shows
  the same digit; the paper's MNIST numbers are of this protocol (its exclusive-feature Recall@1,
  9.93 / 9.80 %, is the 10 % chance level of ten classes, and its pixel Recall@1, 30.45 /
  40.02 %, is far above the 0.01 % chance of finding one pair among 10,000). Without labels
  (facades) the query's own pair is the only match. ``metrics.recall_at_k``: ties count against.
* ``recall@1_pair/<features>/<direction>``: the stricter instance-level protocol everywhere: the
  nearest key must be the query's own pair (the same digit *image*).
* ``shared_pair_ratio`` / ``exclusive_pair_ratio``: how much closer a pair's features are than
  two strangers' (``pair_distance_ratio``): what decides retrieval, free of the features' scale.
* ``analogy_error/x`` (MNIST-CD/CB only, whose ground truth is exact): the mean Euclidean
  distance, on [0, 1] pixel values, between ``F_d(S^X_i, E^X_j)`` (digit i with the colour of
  image j, j = i + 1 cyclically) and the exact rendering of digit i in image j's colour;
  ``analogy_error/y`` the same with ``G_d`` on MNIST-CB. ``analogy_error_copy/x|y`` is the
  distance of the unchanged image i to the same target: what ignoring E_j would score.
* Figures (``save_figures``): sample diversity (translations with several noise vectors),
  visual analogies ``F_d(S_i, E_j)`` / ``G_d(S_i, E_j)`` as tables, and interpolations along the
  shared part (S_a -> S_b with E_a fixed) and along the exclusive part (E_a -> E_b with S_a fixed).
"""
from __future__ import annotations

import os

import jax
import numpy as np

from disen_jax import logging as loglib
from disen_jax.data import Dataset
from disen_jax.data import colored_mnist
from disen_jax.evaluation import Needs, metrics

FEATURES = ("shared", "exclusive", "pixels")
DIRECTIONS = ("x2y", "y2x")


def batched(fn, *arrays, size: int = 256):
  """``fn`` over chunks of ``size`` rows, concatenated (pytrees of arrays too), as numpy."""
  outs = [jax.device_get(fn(*[a[i:i + size] for a in arrays])) for i in range(0, len(arrays[0]), size)]
  return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)


def flat(a) -> np.ndarray:
  a = np.asarray(a)
  return a.reshape(len(a), -1)


def encode(maps, test_ds: Dataset, size: int = 256) -> dict[str, np.ndarray]:
  """``{"s_x", "e_x", "s_y", "e_y"}`` of every test pair."""
  s_x, e_x = batched(maps["encode_x"], test_ds.domains["x"], size=size)
  s_y, e_y = batched(maps["encode_y"], test_ds.domains["y"], size=size)
  return {"s_x": s_x, "e_x": e_x, "s_y": s_y, "e_y": e_y}


def retrieval(feats: dict, test_ds: Dataset) -> dict[str, float]:
  """Recall@1 on shared, exclusive and pixel features in both directions (see the module doc)."""
  by = {"shared": (flat(feats["s_x"]), flat(feats["s_y"])),
        "exclusive": (flat(feats["e_x"]), flat(feats["e_y"])),
        "pixels": (flat(test_ds.domains["x"]), flat(test_ds.domains["y"]))}
  labels = test_ds.extras.get("x/label")
  out = {}
  for name, (fx, fy) in by.items():
    for direction, (q, k) in (("x2y", (fx, fy)), ("y2x", (fy, fx))):
      out[f"recall@1_pair/{name}/{direction}"] = metrics.recall_at_k(q, k, k=1)
      out[f"recall@1/{name}/{direction}"] = (out[f"recall@1_pair/{name}/{direction}"] if labels is None
                                             else metrics.recall_at_k(q, k, k=1, labels=labels))
  return out


def pair_distance_ratio(feats: dict) -> dict[str, float]:
  """``shared_pair_ratio``: the mean Euclidean distance between S^X and S^Y of the same pair over
  the mean distance between S^X and S^Y of different pairs: 0 when the pairs' shared features
  coincide, ~1 when a pair is no closer than two strangers (retrieval on S then fails, whatever
  the scale of S); ``exclusive_pair_ratio`` the same on E."""
  out = {}
  for name, (a, b) in (("shared", ("s_x", "s_y")), ("exclusive", ("e_x", "e_y"))):
    fx, fy = flat(feats[a]).astype(np.float64), flat(feats[b]).astype(np.float64)
    d = np.sqrt(np.maximum(np.sum(fx ** 2, 1)[:, None] - 2 * fx @ fy.T + np.sum(fy ** 2, 1)[None], 0))
    n = len(d)
    others = (d.sum() - np.trace(d)) / (n * (n - 1))
    out[f"{name}_pair_ratio"] = float(np.mean(np.diag(d)) / others) if others > 0 else float("nan")
  return out


def _distance01(a, b) -> float:
  """Mean over images of the Euclidean distance between [-1, 1] images, on [0, 1] values."""
  d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) / 2.0
  return float(np.mean(np.sqrt(np.sum(d.reshape(len(d), -1) ** 2, axis=1))))


def analogy_error(maps, test_ds: Dataset, feats: dict, size: int = 256) -> dict[str, float]:
  """Distances to the exact analogies of colored MNIST (see the module doc)."""
  mask = test_ds.extras["x/mask"]
  j = np.roll(np.arange(len(mask)), -1)
  out = {}
  for d, decode, render in (("x", "decode_x", colored_mnist.render_cd),
                            ("y", "decode_y", colored_mnist.render_cb)):
    target = render(mask, test_ds.extras[f"{d}/color"][j])
    pred = batched(maps[decode], feats[f"s_{d}"], feats[f"e_{d}"][j], size=size)
    out[f"analogy_error/{d}"] = _distance01(pred, target)
    out[f"analogy_error_copy/{d}"] = _distance01(test_ds.domains[d], target)
  return out


DEFAULTS = dict(batch_size=256, num_show=6, num_noise=6, interp_steps=8)


def needs(spec, config) -> Needs:
  del spec, config
  return Needs(maps=("encode_x", "encode_y", "decode_x", "decode_y"), domains=("x", "y"), paired=True)


def evaluate(maps, test_ds: Dataset, *, config, workdir: str | None = None,
             step: int | None = None) -> dict[str, float]:
  size = config.eval.cross_domain.batch_size
  feats = encode(maps, test_ds, size)
  out = {**retrieval(feats, test_ds), **pair_distance_ratio(feats)}
  if "x/mask" in test_ds.extras:
    out.update(analogy_error(maps, test_ds, feats, size))
  if workdir is not None and step is not None:
    save_figures(maps, test_ds, config, os.path.join(workdir, "samples"), suffix=f"_{step:08d}")
  return out


# ----------------------------------------------------------------------------- figures


def _lerp(a, b, n: int) -> np.ndarray:
  t = np.linspace(0.0, 1.0, n).reshape((n,) + (1,) * (np.ndim(a)))
  return (1.0 - t) * a[None] + t * b[None]


def save_figures(maps, test_ds: Dataset, config, directory: str, suffix: str = "") -> list[str]:
  """Writes the diversity, analogy and interpolation grids; returns the paths written.

  * ``diversity_x2y``: one row per test x: x, then G_d(S^X, z_1..k) (``y2x`` likewise);
  * ``analogies_x``: top row the images j giving E, left column the images i giving S, cell
    F_d(S^X_i, E^X_j) (``analogies_y`` with G_d on Y);
  * ``interpolation_x``: for pairs (a, b) two rows: F_d(lerp(S_a, S_b), E_a) (shared) and
    F_d(S_a, lerp(E_a, E_b)) (exclusive), with a and b at the ends (``interpolation_y`` likewise).
  """
  ev = config.eval.cross_domain
  n_show, n_noise, n_interp = ev.num_show, ev.num_noise, ev.interp_steps
  n = min(n_show, len(test_ds.domains["x"]))
  x, y = test_ds.domains["x"][:n], test_ds.domains["y"][:n]
  e_dim = np.shape(maps["encode_x"](x[:1])[1])[-1]
  written = []

  def save(name, rows):
    path = os.path.join(directory, f"{name}{suffix}.png")
    loglib.save_png(path, loglib.image_grid([np.asarray(r) for r in rows]))
    written.append(path)

  z = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (n_noise, 1, e_dim)))
  for d, img, enc, dec in (("x2y", x, "encode_x", "decode_y"), ("y2x", y, "encode_y", "decode_x")):
    s = maps[enc](img)[0]
    outs = [np.asarray(maps[dec](s, np.repeat(z[k], n, axis=0))) for k in range(n_noise)]
    save(f"diversity_{d}", [np.concatenate([img[i:i + 1]] + [o[i:i + 1] for o in outs]) for i in range(n)])

  for d, img, enc, dec in (("x", x, "encode_x", "decode_x"), ("y", y, "encode_y", "decode_y")):
    s, e = (np.asarray(a) for a in maps[enc](img))
    blank = -np.ones_like(img[:1])
    rows = [np.concatenate([blank, img])]
    for i in range(n):
      cells = np.asarray(maps[dec](np.repeat(s[i:i + 1], n, axis=0), e))
      rows.append(np.concatenate([img[i:i + 1], cells]))
    save(f"analogies_{d}", rows)

    rows = []
    for a in range(0, n - 1, 2):
      b = a + 1
      s_path = _lerp(s[a], s[b], n_interp)
      e_path = _lerp(e[a], e[b], n_interp)
      shared_row = np.asarray(maps[dec](s_path, np.repeat(e[a:a + 1], n_interp, axis=0)))
      excl_row = np.asarray(maps[dec](np.repeat(s[a:a + 1], n_interp, axis=0), e_path))
      ends = lambda row: np.concatenate([img[a:a + 1], row, img[b:b + 1]])
      rows += [ends(shared_row), ends(excl_row)]
    if rows:
      save(f"interpolation_{d}", rows)
  return written


# ----------------------------------------------------------------------------- reports


def nested(flat_metrics: dict) -> dict:
  """``{"recall@1/shared/x2y": v, ...}`` -> ``{"recall@1": {"shared": {"x2y": v}}, ...}``."""
  out = {}
  for key, value in flat_metrics.items():
    node = out
    *path, leaf = key.split("/")
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = float(value)
  return out


def retrieval_table(results: dict, paper: dict, names: dict[str, str]) -> list[str]:
  """Markdown rows: Recall@1 (%) per feature and direction, ours beside the paper's.

  ``results`` is ``nested(...)`` output; ``paper[feature][direction]`` the paper's numbers (or
  absent); ``names`` maps ``x2y``/``y2x`` to readable directions (e.g. ``"CD -> CB"``). The
  own-pair column is shown where it differs from the paper's protocol (data with labels).
  """
  has_pair = results["recall@1"] != results["recall@1_pair"]
  head = "| features | direction | paper | ours |" + (" ours, own pair only |" if has_pair else "")
  rows = [head, "|---" * (5 if has_pair else 4) + "|"]
  for feature in FEATURES:
    for direction in DIRECTIONS:
      ref = paper.get(feature, {}).get(direction)
      cells = [feature, names[direction], "-" if ref is None else f"{ref:.2f}",
               f"{100 * results['recall@1'][feature][direction]:.2f}"]
      if has_pair:
        cells.append(f"{100 * results['recall@1_pair'][feature][direction]:.2f}")
      rows.append("| " + " | ".join(cells) + " |")
  return rows
