"""Evaluation metrics: small pure functions on numpy / JAX arrays, returning Python floats.

* Correlation: ``pearson(x, y)``, ``corr_matrix(a, b)``.
* Image fidelity (dm-pix): ``psnr(x, y)``, ``ssim(x, y)`` for NHWC images in [-1, 1].
* Regression: ``r2_score``, ``r2_per_output``, ``linear_probe_r2`` (ridge, fit on train, scored on test).
* Retrieval: ``recall_at_k(queries, keys, k=...)``, chunked so 10k x 10k fits in memory.
* Small CNNs (MLPs on vectors) that recover factors or classes from images or codes, trained by
  the library itself: ``train_regressor`` / ``regressor_r2``, ``train_classifier`` /
  ``classifier_accuracy``, ``predict``, and ``get_or_train_regressor`` /
  ``get_or_train_classifier`` (train once, cache the params in a file).

Statistics are computed in float64 numpy (they are cheap and precision matters); images go
through jitted dm-pix in float32.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import dm_pix as pix
import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any
ApplyFn = Callable[[Params, jax.Array], jax.Array]


# ----------------------------------------------------------------------------- correlation


def _standardize(a: np.ndarray) -> np.ndarray:
  """Columns of ``a`` shifted to mean 0 and scaled to std 1; constant columns become 0."""
  a = a - a.mean(axis=0)
  std = a.std(axis=0)
  return np.divide(a, std, out=np.zeros_like(a), where=std > 0)


def corr_matrix(a, b) -> np.ndarray:
  """Pearson correlations between the columns of ``a`` [n, p] and ``b`` [n, q]: a [p, q] array.

  A constant column has no defined correlation; it gets 0 (not NaN), so that dead latent
  dimensions read as "uncorrelated" in max/mean aggregations.
  """
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
    raise ValueError(f"corr_matrix needs [n, p] and [n, q] arrays, got {a.shape} and {b.shape}")
  c = _standardize(a).T @ _standardize(b) / len(a)
  return np.clip(c, -1.0, 1.0)


def pearson(x, y) -> float:
  """Pearson correlation of two 1-D arrays of the same length (0 if either is constant)."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if x.ndim != 1 or x.shape != y.shape:
    raise ValueError(f"pearson needs two 1-D arrays of equal length, got {x.shape} and {y.shape}")
  return float(corr_matrix(x[:, None], y[:, None])[0, 0])


# ----------------------------------------------------------------------------- PSNR / SSIM


@jax.jit
def _psnr_per_image(x, y, data_range):
  # dm-pix assumes a dynamic range of 1; PSNR is shift-invariant, so scaling suffices.
  return pix.psnr(x / data_range, y / data_range)


@jax.jit
def _ssim_per_image(x, y, data_range, low):
  # SSIM is not shift-invariant: map [low, low + data_range] to the [0, 1] dm-pix expects.
  return pix.ssim((x - low) / data_range, (y - low) / data_range, max_val=1.0)


def _batch_mean(fn, x, y, batch_size: int, *args) -> float:
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  if x.shape != y.shape or x.ndim not in (3, 4):
    raise ValueError(f"need two NHWC (or HWC) image arrays of equal shape, got {x.shape} and {y.shape}")
  if x.ndim == 3:
    x, y = x[None], y[None]
  total = 0.0
  for s in range(0, len(x), batch_size):
    total += float(jnp.sum(fn(x[s:s + batch_size], y[s:s + batch_size], *args)))
  return total / len(x)


def psnr(x, y, *, data_range: float = 2.0, batch_size: int = 256) -> float:
  """Mean over the batch of per-image PSNR (dB) between NHWC images ``x`` and ``y``.

  ``data_range`` is max - min of the pixel values (2 for images in [-1, 1]), so
  ``psnr = 10 log10(data_range^2 / mse)``. Identical images give ``inf``. Computed by
  ``dm_pix.psnr`` in chunks of ``batch_size`` images.
  """
  return _batch_mean(_psnr_per_image, x, y, batch_size, data_range)


def ssim(x, y, *, data_range: float = 2.0, low: float = -1.0, batch_size: int = 256) -> float:
  """Mean over the batch of per-image SSIM between NHWC images ``x`` and ``y``.

  Pixels in ``[low, low + data_range]`` (default [-1, 1]) are mapped to [0, 1] before calling
  ``dm_pix.ssim`` (Gaussian 11x11 window, sigma 1.5, like ``tf.image.ssim``; colour channels are
  averaged), so images must be at least 11 pixels on a side. Identical images give 1.
  """
  return _batch_mean(_ssim_per_image, x, y, batch_size, data_range, low)


# ----------------------------------------------------------------------------- regression


def _as_2d(y) -> np.ndarray:
  y = np.asarray(y, np.float64)
  return y[:, None] if y.ndim == 1 else y


def r2_per_output(y_true, y_pred) -> np.ndarray:
  """Coefficient of determination ``1 - SSE/SST`` for each output column ([n] or [n, d] -> [d]).

  A constant target (SST = 0) scores 1 if predicted exactly and 0 otherwise (as scikit-learn).
  """
  y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
  if y_true.shape != y_pred.shape:
    raise ValueError(f"r2: y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
  sse = np.sum(np.square(y_true - y_pred), axis=0)
  sst = np.sum(np.square(y_true - y_true.mean(axis=0)), axis=0)
  safe_sst = np.where(sst > 0, sst, 1.0)
  return np.where(sst > 0, 1.0 - sse / safe_sst, np.where(sse == 0, 1.0, 0.0))


def r2_score(y_true, y_pred) -> float:
  """Mean over outputs of ``r2_per_output``: 1 for a perfect prediction, 0 for predicting the mean."""
  return float(np.mean(r2_per_output(y_true, y_pred)))


def linear_probe_r2(train_x, train_y, test_x, test_y, *, l2: float = 1e-3) -> float:
  """R^2 on ``(test_x, test_y)`` of a ridge regression fit on ``(train_x, train_y)``.

  Closed form with an unpenalized bias: minimizes ``mean ||y - x W - b||^2 + l2 ||W||^2`` over the
  training set only, then scores the held-out test set (a probe is never scored on the data it
  was fit on). ``x``: [n, p] features (e.g. latent codes), ``y``: [n] or [n, d] targets.
  """
  train_x = np.asarray(train_x, np.float64)
  test_x = np.asarray(test_x, np.float64)
  train_y, test_y = _as_2d(train_y), _as_2d(test_y)
  if len(train_x) != len(train_y) or len(test_x) != len(test_y):
    raise ValueError("linear_probe_r2: features and targets must have the same number of rows")
  x_mean, y_mean = train_x.mean(axis=0), train_y.mean(axis=0)
  xc, yc = train_x - x_mean, train_y - y_mean
  n, p = xc.shape
  w = np.linalg.solve(xc.T @ xc / n + l2 * np.eye(p), xc.T @ yc / n)
  pred = (test_x - x_mean) @ w + y_mean
  return r2_score(test_y, pred)


# ----------------------------------------------------------------------------- retrieval


def recall_at_k(queries, keys, *, k: int = 1, labels=None, chunk_size: int = 1024) -> float:
  """Fraction of queries whose true match is among their ``k`` nearest keys (Euclidean).

  ``queries[i]`` matches ``keys[i]`` (both [n, d]); with ``labels`` ([n], shared by ``queries[i]``
  and ``keys[i]``), every key with the query's label is a match (class-level retrieval). The rank
  of the nearest match counts every *non-matching* key at a distance <= its distance, so ties go
  against the match (a collapsed embedding scores 0, not 1). Distances are computed
  ``chunk_size`` queries at a time, so memory is O(chunk_size * n).
  """
  q = np.asarray(queries, np.float64)
  kk = np.asarray(keys, np.float64)
  if q.ndim != 2 or q.shape != kk.shape:
    raise ValueError(f"recall_at_k needs queries and keys of equal shape [n, d], got {q.shape}, {kk.shape}")
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  n = len(q)
  labels = np.arange(n) if labels is None else np.asarray(labels)
  if labels.shape != (n,):
    raise ValueError(f"recall_at_k: labels must have shape ({n},), got {labels.shape}")
  k_sq = np.sum(kk * kk, axis=1)
  hits = 0
  for s in range(0, n, chunk_size):
    qc = q[s:s + chunk_size]
    d = np.sum(qc * qc, axis=1)[:, None] - 2.0 * qc @ kk.T + k_sq[None, :]
    match = labels[s:s + len(qc), None] == labels[None, :]
    nearest_match = np.min(np.where(match, d, np.inf), axis=1)
    rank = np.sum(~match & (d <= nearest_match[:, None]), axis=1)  # non-matches at least as close
    hits += int(np.sum(rank < k))
  return hits / n


# ----------------------------------------------------------------------------- regressors, classifiers


class CNNRegressor(nn.Module):
  """Conv(3x3, stride 2) + ReLU per entry of ``features``, then Dense(hidden) + ReLU + Dense(out)
  (with no ``features``, an MLP on the flattened input)."""
  features: Sequence[int]
  out_dim: int
  hidden: int = 256

  @nn.compact
  def __call__(self, x):
    for f in self.features:
      x = nn.relu(nn.Conv(f, (3, 3), strides=2)(x))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.out_dim)(x)


def _regressor_module(input_shape: Sequence[int], out_dim: int, width: int) -> CNNRegressor:
  """For images [H, W, C], enough stride-2 convs to bring them down to about 4x4 (channels
  doubling up to 8*width); for vectors, none."""
  if len(input_shape) != 3:
    return CNNRegressor((), out_dim)
  n_down = max(1, int(np.log2(max(min(input_shape[0], input_shape[1]) // 4, 1))))
  return CNNRegressor(tuple(min(width * 2**i, 8 * width) for i in range(n_down)), out_dim)


def _fit(net, loss_fn, inputs, targets, *, seed: int, steps: int, batch_size: int,
         learning_rate: float, chunk: int):
  """Adam with a cosine-decayed learning rate on ``loss_fn(net, x, y)``, each step on
  ``batch_size`` random examples (with replacement), as a jitted ``lax.scan`` over ``chunk``
  steps at a time; deterministic given ``seed``. Returns the trained ``net``."""
  n = len(inputs)
  data_rng = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  opt_state = tx.init(net)

  @functools.partial(jax.jit, static_argnames="length")
  def run(net, opt_state, start, inputs, targets, length):

    def step(carry, i):
      net, opt_state = carry
      idx = jax.random.randint(jax.random.fold_in(data_rng, i), (batch_size,), 0, n)
      loss, grads = jax.value_and_grad(loss_fn)(net, inputs[idx], targets[idx])
      updates, opt_state = tx.update(grads, opt_state, net)
      return (optax.apply_updates(net, updates), opt_state), loss

    return jax.lax.scan(step, (net, opt_state), start + jnp.arange(length))

  for start in range(0, steps, chunk):
    (net, opt_state), _ = run(net, opt_state, start, inputs, targets, length=min(chunk, steps - start))
  return net


def _init_net(module, input_shape, seed: int):
  return module.init(jax.random.PRNGKey(seed), jnp.zeros((1, *input_shape), jnp.float32))


def _make_apply(module: CNNRegressor) -> ApplyFn:

  @jax.jit
  def apply_fn(params, images):
    return module.apply(params["net"], images) * params["y_std"] + params["y_mean"]

  return apply_fn


def _init_params(module, image_shape, out_dim, rng_seed: int = 0):
  return {"net": _init_net(module, image_shape, rng_seed), "y_mean": jnp.zeros((out_dim,)),
          "y_std": jnp.ones((out_dim,))}


def train_regressor(images, targets, *, seed: int = 0, steps: int = 1000, batch_size: int = 64,
                    learning_rate: float = 1e-3, width: int = 32,
                    chunk: int = 100) -> tuple[Params, ApplyFn]:
  """Trains a ``CNNRegressor`` from ``images`` [n, H, W, C] (or vectors [n, d]) to ``targets``
  [n] or [n, d], on the MSE of standardized targets (``_fit``).

  Returns ``(params, apply_fn)``; ``apply_fn(params, images) -> [n, d]`` predictions in target
  units (jitted; the standardization is stored in ``params``).
  """
  images = jnp.asarray(images, jnp.float32)
  targets = jnp.asarray(targets, jnp.float32)
  targets = targets[:, None] if targets.ndim == 1 else targets
  if images.ndim not in (2, 4) or targets.ndim != 2 or len(images) != len(targets):
    raise ValueError(f"train_regressor needs images [n, H, W, C] (or vectors [n, d]) and targets "
                     f"[n, d], got {images.shape} and {targets.shape}")
  out_dim = targets.shape[1]
  module = _regressor_module(images.shape[1:], out_dim, width)
  params = _init_params(module, images.shape[1:], out_dim, seed)
  y_std = jnp.std(targets, axis=0)
  params["y_mean"] = jnp.mean(targets, axis=0)
  params["y_std"] = jnp.where(y_std > 0, y_std, 1.0)

  def loss_fn(net, x, y):
    return jnp.mean(jnp.square(module.apply(net, x) - (y - params["y_mean"]) / params["y_std"]))

  params["net"] = _fit(params["net"], loss_fn, images, targets, seed=seed, steps=steps,
                       batch_size=batch_size, learning_rate=learning_rate, chunk=chunk)
  return params, _make_apply(module)


def predict(params: Params, apply_fn: ApplyFn, inputs, *, batch_size: int = 256) -> np.ndarray:
  """``apply_fn(params, inputs)`` in chunks of ``batch_size``, as a numpy [n, d] array.

  The last chunk is zero-padded to the chunk size, so only one shape is ever compiled.
  """
  inputs = np.asarray(inputs, np.float32)
  n, bs = len(inputs), min(batch_size, len(inputs))
  out = []
  for s in range(0, n, bs):
    chunk = inputs[s:s + bs]
    pad = bs - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
    out.append(np.asarray(apply_fn(params, chunk))[:bs - pad])
  return np.concatenate(out)


regressor_predict = predict


def regressor_r2(params: Params, apply_fn: ApplyFn, images, targets, *, batch_size: int = 256) -> float:
  """Mean R^2 of the regressor on held-out ``(images, targets)`` (never its training set)."""
  return r2_score(targets, predict(params, apply_fn, images, batch_size=batch_size))


def train_classifier(inputs, labels, num_classes: int, *, seed: int = 0, steps: int = 1000,
                     batch_size: int = 64, learning_rate: float = 1e-3, width: int = 32,
                     chunk: int = 100) -> tuple[Params, ApplyFn]:
  """Trains a ``CNNRegressor`` (an MLP on vectors) on softmax cross-entropy: ``inputs`` [n, H, W,
  C] images or [n, d] vectors (e.g. codes, for a probe), ``labels`` [n] in ``[0, num_classes)``.

  Returns ``(params, apply_fn)``, ``apply_fn(params, inputs) -> [n, num_classes]`` logits."""
  inputs = jnp.asarray(inputs, jnp.float32)
  labels = jnp.asarray(labels, jnp.int32)
  if inputs.ndim not in (2, 4) or labels.shape != (len(inputs),):
    raise ValueError(f"train_classifier needs inputs [n, H, W, C] or [n, d] and labels [n], got "
                     f"{inputs.shape} and {labels.shape}")
  module = _regressor_module(inputs.shape[1:], num_classes, width)
  loss_fn = lambda net, x, y: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(module.apply(net, x), y))
  net = _fit(_init_net(module, inputs.shape[1:], seed), loss_fn, inputs, labels, seed=seed,
             steps=steps, batch_size=batch_size, learning_rate=learning_rate, chunk=chunk)
  return {"net": net}, jax.jit(lambda params, x: module.apply(params["net"], x))


def classifier_accuracy(params: Params, apply_fn: ApplyFn, inputs, labels, *, batch_size: int = 256) -> float:
  """Fraction of ``inputs`` whose argmax logit is their label (held-out data, never the
  classifier's training set)."""
  return float(np.mean(np.argmax(predict(params, apply_fn, inputs, batch_size=batch_size), 1)
                       == np.asarray(labels)))


def save_params(path: str, params: Params) -> None:
  """Writes ``params`` with ``flax.serialization.to_bytes`` (atomically: temp file + rename)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "wb") as f:
    f.write(flax.serialization.to_bytes(params))
  os.replace(tmp, path)


save_regressor = save_params


def _load(path: str, template: Params, what: str) -> Params:
  with open(path, "rb") as f:
    data = f.read()
  mismatch = f"cached model {path} does not match {what}; delete it to retrain"
  try:
    params = flax.serialization.from_bytes(template, data)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(mismatch) from e
  shapes = lambda t: jax.tree_util.tree_map(jnp.shape, t)
  if shapes(params) != shapes(template):
    raise ValueError(mismatch)
  return params


def load_regressor(path: str, image_shape: Sequence[int], out_dim: int, *,
                   width: int = 32) -> tuple[Params, ApplyFn]:
  """Reads params written by ``save_regressor`` for images of ``image_shape`` (H, W, C)."""
  module = _regressor_module(image_shape, out_dim, width)
  what = f"images {tuple(image_shape)} with {out_dim} targets (width={width})"
  return _load(path, _init_params(module, image_shape, out_dim), what), _make_apply(module)


def cache_path(ev, workdir: str | None, name: str) -> str | None:
  """Where an evaluator caches a trained probe: ``ev.cache_dir`` (its config), else
  ``workdir/eval_cache``; None (train, do not cache) without either."""
  cache_dir = ev.cache_dir or (workdir and os.path.join(workdir, "eval_cache"))
  return os.path.join(cache_dir, name) if cache_dir else None


def _cached(cache_path: str | None, load: Callable, train: Callable):
  if cache_path is None:
    return train()
  if os.path.exists(cache_path):
    return load()
  params, apply_fn = train()
  if jax.process_index() == 0:  # every process trains the same model; one writes it
    save_params(cache_path, params)
  return params, apply_fn


def get_or_train_regressor(cache_path: str | None, train_images, train_targets,
                           **train_kwargs) -> tuple[Params, ApplyFn]:
  """Loads the regressor cached at ``cache_path``, or trains it and writes the cache.

  The cache is keyed by path only: use one path per (dataset, resolution, factors), e.g.
  ``<workdir>/regressor_64.msgpack`` (``cache_path``); None trains without caching.
  ``train_kwargs`` go to ``train_regressor``.
  """
  train_images = np.asarray(train_images)
  out_dim = 1 if np.ndim(train_targets) == 1 else np.shape(train_targets)[1]
  width = train_kwargs.get("width", 32)
  return _cached(cache_path,
                 lambda: load_regressor(cache_path, train_images.shape[1:], out_dim, width=width),
                 lambda: train_regressor(train_images, train_targets, **train_kwargs))


def get_or_train_classifier(cache_path: str | None, inputs, labels, num_classes: int,
                            **train_kwargs) -> tuple[Params, ApplyFn]:
  """``train_classifier``, cached at ``cache_path`` as ``get_or_train_regressor`` does."""
  inputs = np.asarray(inputs)
  module = _regressor_module(inputs.shape[1:], num_classes, train_kwargs.get("width", 32))

  def load():
    template = {"net": _init_net(module, inputs.shape[1:], 0)}
    what = f"inputs {inputs.shape[1:]} with {num_classes} classes"
    return _load(cache_path, template, what), jax.jit(lambda params, x: module.apply(params["net"], x))

  return _cached(cache_path, load, lambda: train_classifier(inputs, labels, num_classes, **train_kwargs))
