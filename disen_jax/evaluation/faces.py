"""Scores on the procedural faces benchmark (``synthfaces``), all on the test split.

Needs the maps ``translate_v2c`` and ``translate_c2v`` (and uses ``residual`` where the method
has one) and the factors of every test face; settings ``config.eval.faces`` (``DEFAULTS``).

* ``c_fidelity_psnr`` / ``_ssim``: translate_v2c(v) against the exact render of v's face (C).
* ``v_fidelity_psnr`` / ``_ssim``: translate_c2v(c_i, reference v_j) against the exact photo with
  c_i's face and v_j's lighting and background (noise-free: sensor noise cannot be predicted),
  the mix-and-match of Harley et al.'s Figure 8. A method without a residual (CycleGAN) ignores
  the reference: it cannot take v_j's lighting, and the score says so.
* ``expression_r2``: R^2 of the 7 expression factors of v recovered from translate_v2c(v) by a
  CNN regressor trained on exact C renders of a separate factor stream (cached per resolution in
  ``config.eval.faces.cache_dir`` or ``workdir/eval_cache``); ``expression_r2_renders`` is the
  same regressor on the exact renders of the test faces: the ceiling.
* ``residual_r2``: R^2 of a ridge probe from the (spatially averaged) ``residual`` features to
  the lighting (cos, sin of the azimuth, RGB colour), fit on one half of the test V images and
  scored on the other half. Absent for methods without a residual.

Diagnostics (what the maps depend on; how a run fails shows here before it shows in the pictures):

* ``c_spread``: how much translate_v2c(v) varies across test photos, over how much their exact
  renders vary (1: as varied as the faces; 0: one output for every input).
* ``e_c_swap``, ``e_c_blank``, ``e_r_swap`` (methods with ``residual`` and ``decode_v``, i.e.
  uncoop's entangler): how much E(c, r) changes when its render c is swapped for another face's or
  blanked, or its residual r swapped for another photo's (``entangler_dependence``). An E that
  ignores c (the residual carries the whole photo) scores ~0 on the first two.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from disen_jax import logging as loglib
from disen_jax.data import Dataset, synthfaces
from disen_jax.evaluation import Needs, metrics

_REGRESSOR_STREAM = 7  # a factor stream no split uses
_SHARED_KEYS = synthfaces.IDENTITY_KEYS + synthfaces.EXPRESSION_KEYS + synthfaces.ACCESSORY_KEYS


def factors(ds: Dataset, domain: str, n: int | None = None) -> dict[str, np.ndarray]:
  return {k: ds.extras[f"{domain}/{k}"][:n] for k in synthfaces.FACTOR_KEYS}


def mix(face: dict, residual: dict) -> dict:
  """Factors with ``face``'s identity, expression and accessory and ``residual``'s lighting and
  background, noise-free."""
  out = {k: face[k] for k in _SHARED_KEYS}
  out.update({k: residual[k] for k in synthfaces.RESIDUAL_KEYS})
  out["noise_std"] = np.zeros_like(out["noise_std"])
  return out


def batched(fn, *arrays, size: int = 64):
  """Applies ``fn`` to chunks of ``size`` examples of every argument (arrays or pytrees of
  arrays) and concatenates the outputs."""
  n = len(jax.tree_util.tree_leaves(arrays[0])[0])
  chunk = lambda i: jax.tree_util.tree_map(lambda a: a[i:i + size], arrays)
  outs = [jax.device_get(fn(*chunk(i))) for i in range(0, n, size)]
  return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)


DEFAULTS = dict(regressor_steps=2000, cache_dir="", num_mix=6)


def needs(spec, config) -> Needs:
  del spec, config
  return Needs(maps=("translate_v2c", "translate_c2v"), optional=("residual", "decode_v"), domains=("v", "c"),
               fields=tuple(f"{d}/{k}" for d in ("v", "c") for k in synthfaces.FACTOR_KEYS))


def expression_regressor(config, workdir: str | None):
  res, d, ev = config.data.resolution, config.data, config.eval.faces
  f = synthfaces.sample_factors(3000, seed=synthfaces.stream_seed(d.seed, "train", "c") + _REGRESSOR_STREAM,
                                num_identities=d.num_identities, glasses_prob=d.glasses_prob)
  images, targets = synthfaces.render(f, "c", res), synthfaces.expression_vector(f)
  kwargs = dict(steps=ev.regressor_steps, batch_size=32, seed=0)
  name = f"expression_regressor_{res}px_{ev.regressor_steps}steps_seed{d.seed}.msgpack"
  return metrics.get_or_train_regressor(metrics.cache_path(ev, workdir, name), images, targets, **kwargs)


def _pool(residual) -> np.ndarray:
  """Residual features -> [n, d]: vectors as they are, feature maps averaged over space."""
  leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(residual)]
  return np.concatenate([x.reshape(len(x), -1) if x.ndim == 2 else x.mean(axis=(1, 2)) for x in leaves], 1)


def _spread(images) -> float:
  """Root of the per-pixel variance across images, averaged over pixels: how much images differ."""
  return float(np.sqrt(np.mean(np.var(np.asarray(images, np.float64), axis=0))))


def entangler_dependence(decode, c, residual) -> dict[str, float]:
  """What the entangler's output E(c, r) depends on, on test renders c and residuals r of test
  photos: the mean squared change of E's output when c is swapped for another image's
  (``e_c_swap``), replaced by an empty (black) render (``e_c_blank``), or when r is swapped
  (``e_r_swap``), each over the variance of E's outputs across images. 0: E ignores it; an output
  that is the sum of independent c and r parts scores twice each part's share."""
  perm = np.roll(np.arange(len(c)), 1)
  take = lambda tree: jax.tree_util.tree_map(lambda a: np.asarray(a)[perm], tree)
  base = batched(decode, c, residual)
  var = _spread(base) ** 2 + 1e-12
  change = lambda other: float(np.mean((np.asarray(other) - base) ** 2)) / var
  return {"e_c_swap": change(batched(decode, c[perm], residual)),
          "e_c_blank": change(batched(decode, -np.ones_like(c), residual)),
          "e_r_swap": change(batched(decode, c, take(residual)))}


def evaluate(maps, test_ds: Dataset, *, config, workdir: str | None = None, step: int | None = None):
  res = config.data.resolution
  v, c = test_ds.domains["v"], test_ds.domains["c"]
  fv, fc = factors(test_ds, "v"), factors(test_ds, "c")
  out = {}

  gt_c = synthfaces.render(fv, "c", res)
  pred_c = batched(maps["translate_v2c"], v)
  out["c_fidelity_psnr"] = metrics.psnr(pred_c, gt_c)
  out["c_fidelity_ssim"] = metrics.ssim(pred_c, gt_c)

  params, apply_fn = expression_regressor(config, workdir)
  expr = synthfaces.expression_vector(fv)
  out["expression_r2"] = metrics.regressor_r2(params, apply_fn, pred_c, expr)
  out["expression_r2_renders"] = metrics.regressor_r2(params, apply_fn, gt_c, expr)

  n = min(len(v), len(c))
  pred_v = batched(maps["translate_c2v"], c[:n], v[:n])  # c_i with the residual of v_i
  gt_v = synthfaces.render(mix({k: x[:n] for k, x in fc.items()}, {k: x[:n] for k, x in fv.items()}),
                           "v", res)
  out["v_fidelity_psnr"] = metrics.psnr(pred_v, gt_v)
  out["v_fidelity_ssim"] = metrics.ssim(pred_v, gt_v)

  out["c_spread"] = _spread(pred_c) / _spread(gt_c)
  if "residual" in maps:
    residual = batched(maps["residual"], v[:n])
    feats, light = _pool(residual), synthfaces.lighting_vector(fv)[:n]
    half = n // 2
    out["residual_r2"] = metrics.linear_probe_r2(feats[:half], light[:half], feats[half:], light[half:])
    if "decode_v" in maps:
      out.update(entangler_dependence(maps["decode_v"], c[:n], residual))

  if workdir is not None and step is not None:
    save_mix_table(maps, test_ds, config, os.path.join(workdir, "samples", f"mix_and_match_{step:08d}.png"))
  return out


def save_mix_table(maps, test_ds: Dataset, config, path: str) -> None:
  """Expressions (C test images) down the rows, residuals (V test images) across the columns:
  the model's c2v(c_i, residual(v_j)) on the left, the exact photos on the right."""
  k = config.eval.faces.num_mix
  c, v = test_ds.domains["c"][:k], test_ds.domains["v"][:k]
  fc, fv = factors(test_ds, "c", k), factors(test_ds, "v", k)
  rows_pred, rows_true = [], []
  blank = -np.ones_like(v[:1])
  for i in range(k):
    ci = np.repeat(c[i:i + 1], k, axis=0)
    pred = np.asarray(maps["translate_c2v"](ci, v))
    true = synthfaces.render(mix({key: np.repeat(x[i:i + 1], k, 0) for key, x in fc.items()}, fv),
                             "v", config.data.resolution)
    rows_pred.append(np.concatenate([c[i:i + 1], pred]))
    rows_true.append(np.concatenate([c[i:i + 1], true]))
  header = np.concatenate([blank, v])
  table = np.concatenate([loglib.image_grid([header] + rows_pred), loglib.image_grid([header] + rows_true)], 1)
  loglib.save_png(path, table)
