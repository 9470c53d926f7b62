"""Content transfer scored against exact renders (``synthfaces_glasses``: ``a`` = faces without
glasses, ``b`` = with), all on the test split. Needs the maps ``translate_a2b`` (taking a reference
``b`` image whose content it adds) and ``translate_b2a`` and the factors of every test face;
settings ``config.eval.faces_glasses`` (``DEFAULTS``).

* ``transfer_psnr`` / ``_ssim``: ``translate_a2b(a_i, reference=b_j)`` (j = i + 1 cyclically)
  against the exact render of a_i's face with glasses (every factor of a_i, ``glasses = 1``: the
  renderer's glasses have no style of their own, so "b_j's glasses" are the glasses).
  ``transfer_psnr_copy`` / ``_ssim_copy``: a_i itself against the same target, the baseline of
  changing nothing. The glasses cover ~4% of a 64 px face, so this baseline is strong (20.6 dB on
  flat renders, 24.9 dB on photos at 64 px): a transfer beats it only if it adds the glasses
  *and* reconstructs the rest of the face more faithfully than the glasses' own error.
* ``removal_psnr`` / ``_ssim``: ``translate_b2a(b_i)`` against the exact render of b_i without
  glasses; ``removal_psnr_copy`` / ``_ssim_copy`` for b_i unchanged.
* ``removal_p_glasses``: the paper's Table 4 analogue, the mean probability of "glasses" that a
  classifier trained on exact renders (of a factor stream no split uses, half with glasses)
  gives to the removed images (paper on CelebA: 0.011 for content transfer, 0.066 for Fader
  networks). ``transfer_p_glasses`` is the same on the transfers (should be near 1);
  ``glasses_accuracy`` the classifier's accuracy on the real test images (a: 0, b: 1).
* ``identity_r2_transfer`` / ``identity_r2_removal``: identity preservation: the R^2 with which a
  CNN regressor (trained on exact renders like the classifier) recovers the unchanged factors
  (``IDENTITY_TARGETS``: expression, pose, face shape, skin, hair and eye colours) of a_i from
  its transfer and of b_i from its removal; ``identity_r2_renders`` is the same regressor on the
  exact targets: the ceiling.
* ``reconstruction_psnr_a`` / ``_b``: ``G(E1(a), 0)`` vs a and ``G(E1(b), E2(b))`` vs b (when the
  method has ``encode_b`` and ``decode_b``): the auto-encoder's fidelity, which bounds the PSNRs
  above (a blurred face loses to the copy baseline however well the glasses are drawn).
"""
from __future__ import annotations

import os

import numpy as np

from disen_jax import logging as loglib
from disen_jax.data import Dataset, synthfaces
from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.faces import batched

_PROBE_STREAM = 11  # a factor stream no split uses
DEFAULTS = dict(classifier_steps=1000, regressor_steps=2000, num_probe=3000, cache_dir="", num_show=6)


def identity_vector(f) -> np.ndarray:
  """[n, 17] float32: the expression factors, ``face_aspect`` and the skin, hair and eye colours."""
  cols = [synthfaces.expression_vector(f), np.asarray(f["face_aspect"], np.float32)[:, None]]
  cols += [np.asarray(f[k], np.float32) for k in ("skin_color", "hair_color", "eye_color")]
  return np.concatenate(cols, axis=1)


def factors(ds: Dataset, domain: str, n: int | None = None) -> dict[str, np.ndarray]:
  return {k: ds.extras[f"{domain}/{k}"][:n] for k in synthfaces.FACTOR_KEYS}


def with_glasses(f: dict, value: int) -> dict:
  return {**f, "glasses": np.full_like(f["glasses"], value)}


def needs(spec, config) -> Needs:
  del spec, config
  return Needs(maps=("translate_a2b", "translate_b2a"), optional=("encode_a", "encode_b", "decode_b"),
               domains=("a", "b"), fields=tuple(f"{d}/{k}" for d in "ab" for k in synthfaces.FACTOR_KEYS))


def probes(config, workdir: str | None):
  """``((classifier params, apply), (regressor params, apply))`` trained on exact renders of a
  stream no split uses (half with glasses), cached in ``config.eval.faces_glasses.cache_dir`` (or
  ``workdir/eval_cache``)."""
  d, ev = config.data, config.eval.faces_glasses
  f = synthfaces.sample_factors(ev.num_probe, seed=synthfaces.stream_seed(d.seed, "train", "a") + _PROBE_STREAM,
                                num_identities=d.num_identities, glasses_prob=0.5,
                                textures=bool(d.textures) and synthfaces.textures_available())
  images = synthfaces.render(f, d.render, d.resolution)
  tag = f"{d.render}_{d.resolution}px_seed{d.seed}_ids{d.num_identities}_n{ev.num_probe}"
  clf_kw = dict(steps=ev.classifier_steps, batch_size=32, seed=0)
  reg_kw = dict(steps=ev.regressor_steps, batch_size=32, seed=0)
  path = lambda what, steps: metrics.cache_path(ev, workdir, f"glasses_{what}_{tag}_{steps}steps.msgpack")
  return (metrics.get_or_train_classifier(path("classifier", ev.classifier_steps), images, f["glasses"], 2, **clf_kw),
          metrics.get_or_train_regressor(path("regressor", ev.regressor_steps), images, identity_vector(f), **reg_kw))


def p_glasses(classifier, images) -> float:
  """The classifier's mean probability of "glasses" on ``images``."""
  logits = metrics.predict(*classifier, images).astype(np.float64)
  p = np.exp(logits - logits.max(1, keepdims=True))
  return float(np.mean(p[:, 1] / p.sum(1)))


def evaluate(maps, test_ds: Dataset, *, config, workdir: str | None = None, step: int | None = None):
  d = config.data
  a, b = test_ds.domains["a"], test_ds.domains["b"]
  n = min(len(a), len(b))
  a, b = a[:n], b[:n]
  fa, fb = factors(test_ds, "a", n), factors(test_ds, "b", n)
  j = np.roll(np.arange(n), -1)
  target_t = synthfaces.render(with_glasses(fa, 1), d.render, d.resolution)
  target_r = synthfaces.render(with_glasses(fb, 0), d.render, d.resolution)
  transfer = batched(maps["translate_a2b"], a, b[j])
  removal = batched(maps["translate_b2a"], b)

  out = {}
  for name, pred, copy, target in (("transfer", transfer, a, target_t), ("removal", removal, b, target_r)):
    out[f"{name}_psnr"], out[f"{name}_ssim"] = metrics.psnr(pred, target), metrics.ssim(pred, target)
    out[f"{name}_psnr_copy"], out[f"{name}_ssim_copy"] = metrics.psnr(copy, target), metrics.ssim(copy, target)

  classifier, regressor = probes(config, workdir)
  out["removal_p_glasses"] = p_glasses(classifier, removal)
  out["transfer_p_glasses"] = p_glasses(classifier, transfer)
  real = np.concatenate([a, b])
  out["glasses_accuracy"] = metrics.classifier_accuracy(*classifier, real, np.repeat([0, 1], n))
  ids_a, ids_b = identity_vector(fa), identity_vector(fb)
  out["identity_r2_transfer"] = metrics.regressor_r2(*regressor, transfer, ids_a)
  out["identity_r2_removal"] = metrics.regressor_r2(*regressor, removal, ids_b)
  out["identity_r2_renders"] = metrics.regressor_r2(*regressor, np.concatenate([target_t, target_r]),
                                                    np.concatenate([ids_a, ids_b]))

  if {"encode_a", "encode_b", "decode_b"} <= set(maps):
    out["reconstruction_psnr_a"] = metrics.psnr(batched(maps["translate_b2a"], a), a)
    codes = batched(maps["encode_b"], b)
    out["reconstruction_psnr_b"] = metrics.psnr(batched(maps["decode_b"], *codes), b)

  if workdir is not None and step is not None:
    k = min(config.eval.faces_glasses.num_show, n)
    save_figure(os.path.join(workdir, "samples", f"glasses_{step:08d}.png"),
                a[:k], b[j][:k], transfer[:k], target_t[:k], b[:k], removal[:k], target_r[:k])
  return out


def save_figure(path: str, a, reference, transfer, target_t, b, removal, target_r) -> None:
  """Columns: a, the reference b, the transfer, its exact target | b, the removal, its exact target."""
  rows = [np.concatenate([a[i:i + 1], reference[i:i + 1], transfer[i:i + 1], target_t[i:i + 1],
                          b[i:i + 1], removal[i:i + 1], target_r[i:i + 1]]) for i in range(len(a))]
  loglib.save_png(path, loglib.image_grid(rows))
