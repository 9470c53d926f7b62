"""Tests for disen_jax.evaluation.metrics on hand-made cases with known answers."""
import jax
import numpy as np
import pytest

from disen_jax.evaluation import metrics


def test_pearson_known_values():
  x = np.arange(10.0)
  assert metrics.pearson(x, 2 * x + 1) == pytest.approx(1.0)
  assert metrics.pearson(x, -x) == pytest.approx(-1.0)
  assert metrics.pearson(x, np.ones(10)) == 0.0  # constant: defined as 0, not NaN
  y = np.random.default_rng(0).normal(size=10)
  assert metrics.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
  with pytest.raises(ValueError):
    metrics.pearson(x, x[:5])


def test_corr_matrix_shape_and_values():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(200, 3))
  b = np.stack([a[:, 0], -3 * a[:, 1] + 2, a[:, 2], rng.normal(size=200)], axis=1)
  c = metrics.corr_matrix(a, b)
  assert c.shape == (3, 4)
  np.testing.assert_allclose(np.diag(c[:, :3]), [1.0, -1.0, 1.0], atol=1e-12)
  np.testing.assert_allclose(c, np.corrcoef(a.T, b.T)[:3, 3:], atol=1e-12)


def test_psnr():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, size=(4, 16, 16, 3)).astype(np.float32)
  assert metrics.psnr(x, x) > 100  # inf
  y = np.clip(x + 0.1, -2, 2)  # mse = 0.01 exactly, range 2
  assert metrics.psnr(x, y) == pytest.approx(10 * np.log10(4 / 0.01), rel=1e-4)
  assert metrics.psnr(x, y, data_range=1.0) == pytest.approx(10 * np.log10(1 / 0.01), rel=1e-4)
  assert metrics.psnr(x, y, batch_size=3) == pytest.approx(metrics.psnr(x, y), rel=1e-6)


def test_ssim():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, size=(3, 16, 16, 3)).astype(np.float32)
  assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-5)
  noisy = np.clip(x + rng.normal(scale=0.5, size=x.shape), -1, 1).astype(np.float32)
  assert 0.0 < metrics.ssim(x, noisy) < 0.9
  # Chunking does not change the mean; a single HWC image is accepted.
  assert metrics.ssim(x, noisy, batch_size=2) == pytest.approx(metrics.ssim(x, noisy), rel=1e-5)
  assert metrics.ssim(x[0], x[0]) == pytest.approx(1.0, abs=1e-5)


def test_r2():
  rng = np.random.default_rng(0)
  y = rng.normal(size=(50, 3))
  assert metrics.r2_score(y, y) == 1.0
  assert metrics.r2_score(y, np.broadcast_to(y.mean(0), y.shape)) == pytest.approx(0.0, abs=1e-12)
  pred = y.copy()
  pred[:, 1] = y[:, 1].mean()
  np.testing.assert_allclose(metrics.r2_per_output(y, pred), [1.0, 0.0, 1.0], atol=1e-12)
  assert metrics.r2_score(y[:, 0], y[:, 0]) == 1.0  # 1-D


def test_linear_probe():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(8, 3))
  x_tr, x_te = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
  y_tr = x_tr @ w + 0.5 + 0.01 * rng.normal(size=(500, 3))
  y_te = x_te @ w + 0.5 + 0.01 * rng.normal(size=(500, 3))
  assert metrics.linear_probe_r2(x_tr, y_tr, x_te, y_te) > 0.99
  noise_tr, noise_te = rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3))
  x_tr, x_te = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
  assert abs(metrics.linear_probe_r2(x_tr, noise_tr, x_te, noise_te)) < 0.02


def test_recall_at_k_hand_made():
  keys = np.array([[0.0], [10.0], [20.0], [30.0]])
  queries = np.array([[0.0], [10.0], [26.0], [24.0]])  # the last two are nearer each other's key
  assert metrics.recall_at_k(queries, keys, k=1) == 0.5
  assert metrics.recall_at_k(queries, keys, k=2) == 1.0
  assert metrics.recall_at_k(keys, keys, k=1, chunk_size=3) == 1.0
  # Ties count against the match: a collapsed embedding retrieves nothing.
  assert metrics.recall_at_k(np.zeros((5, 2)), np.zeros((5, 2)), k=1) == 0.0


def test_recall_at_k_with_class_labels():
  keys = np.array([[0.0], [10.0], [20.0], [30.0]])
  queries = np.array([[0.0], [19.0], [11.0], [30.0]])  # queries 1 and 2 land near each other's key
  assert metrics.recall_at_k(queries, keys, k=1) == 0.5
  # With classes (0, 1, 1, 2) the keys 1 and 2 are both matches of queries 1 and 2.
  assert metrics.recall_at_k(queries, keys, k=1, labels=[0, 1, 1, 2]) == 1.0
  # Query 1 (class 1) is nearest to key 2 (class 2 here): a miss at k=1, a hit at k=2.
  assert metrics.recall_at_k(queries, keys, k=1, labels=[0, 1, 2, 3], chunk_size=3) == 0.5
  assert metrics.recall_at_k(queries, keys, k=2, labels=[0, 1, 2, 3]) == 1.0
  # A collapsed embedding still scores 0 when every class has other classes beside it.
  assert metrics.recall_at_k(np.zeros((4, 2)), np.zeros((4, 2)), labels=[0, 0, 1, 1]) == 0.0
  with pytest.raises(ValueError, match="labels must have shape"):
    metrics.recall_at_k(queries, keys, labels=[0, 1])


def test_recall_at_k_monotone_and_chunked():
  rng = np.random.default_rng(0)
  keys = rng.normal(size=(300, 4))
  queries = keys + rng.normal(scale=0.8, size=keys.shape)
  r = [metrics.recall_at_k(queries, keys, k=k, chunk_size=64) for k in (1, 5, 20, 300)]
  assert all(a <= b for a, b in zip(r, r[1:]))
  assert 0 < r[0] < 1 and r[-1] == 1.0
  assert metrics.recall_at_k(queries, keys, k=5, chunk_size=7) == r[1]


def _squares(n, seed):
  """16x16 gray images with a 4x4 square: targets (row, col, brightness)."""
  rng = np.random.default_rng(seed)
  pos = rng.integers(0, 13, size=(n, 2))
  bright = rng.uniform(-0.5, 1.0, size=n)
  x = -np.ones((n, 16, 16, 1), np.float32)
  for i, (r, c) in enumerate(pos):
    x[i, r:r + 4, c:c + 4] = bright[i]
  return x, np.c_[pos, bright].astype(np.float32)


def test_cnn_regressor_learns_position_and_brightness(tmp_path):
  x_tr, y_tr = _squares(1000, 0)
  x_te, y_te = _squares(300, 1)
  params, apply_fn = metrics.train_regressor(x_tr, y_tr, seed=0, steps=200)
  assert metrics.regressor_r2(params, apply_fn, x_te, y_te) > 0.9
  assert metrics.regressor_predict(params, apply_fn, x_te, batch_size=128).shape == (300, 3)

  # Caching: the first call trains and writes, the second loads the same params.
  path = str(tmp_path / "reg" / "regressor_16.msgpack")
  p1, f1 = metrics.get_or_train_regressor(path, x_tr[:200], y_tr[:200], seed=1, steps=20)
  p2, f2 = metrics.get_or_train_regressor(path, x_tr[:200], y_tr[:200], seed=1, steps=20)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(f1(p1, x_te[:8]), f2(p2, x_te[:8]), rtol=1e-6)
  # Deterministic per seed.
  p3, _ = metrics.train_regressor(x_tr[:200], y_tr[:200], seed=1, steps=20)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p3)):
    np.testing.assert_array_equal(a, b)
  # A cache that does not fit the images is a clear error naming the file.
  with pytest.raises(ValueError, match="regressor_16.msgpack"):
    metrics.load_regressor(path, (32, 32, 1), 3)


def test_cnn_classifier_learns_the_quadrant_and_a_probe_reads_codes(tmp_path):
  x_tr, y_tr = _squares(1000, 0)
  x_te, y_te = _squares(300, 1)
  quadrant = lambda y: (y[:, 0] >= 6).astype(int) * 2 + (y[:, 1] >= 6).astype(int)
  params, apply_fn = metrics.train_classifier(x_tr, quadrant(y_tr), 4, seed=0, steps=200)
  assert metrics.classifier_accuracy(params, apply_fn, x_te, quadrant(y_te)) > 0.9
  path = str(tmp_path / "clf.msgpack")
  p1, f1 = metrics.get_or_train_classifier(path, x_tr[:200], quadrant(y_tr[:200]), 4, steps=20)
  p2, f2 = metrics.get_or_train_classifier(path, x_tr[:200], quadrant(y_tr[:200]), 4, steps=20)
  np.testing.assert_allclose(f1(p1, x_te[:8]), f2(p2, x_te[:8]), rtol=1e-6)
  # A probe on codes: ~100% where the code carries the label, chance where it does not.
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 1200)
  informative = np.eye(5)[labels] @ rng.normal(size=(5, 16)) + 0.1 * rng.normal(size=(1200, 16))
  noise = rng.normal(size=(1200, 16))
  for codes, lo, hi in ((informative, 0.97, 1.0), (noise, 0.1, 0.3)):
    params, apply_fn = metrics.train_classifier(codes[:1000], labels[:1000], 5, steps=300)
    assert lo <= metrics.classifier_accuracy(params, apply_fn, codes[1000:], labels[1000:]) <= hi
