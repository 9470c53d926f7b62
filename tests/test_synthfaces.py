"""Tests of the procedural faces source (disen_jax.data.synthfaces)."""
import chex
import numpy as np
import pytest

from disen_jax import data
from disen_jax.data import synthfaces as sf
from disen_jax.errors import DataError
from tests.conftest import data_config

_RANGES = {
    "mouth_open": (0, 1), "smile": (-1, 1), "eye_open": (0, 1), "brow": (-1, 1), "tilt": (-1, 1),
    "offset_x": (-1, 1), "offset_y": (-1, 1), "face_aspect": (0.72, 0.92), "hair_style": (0, 2),
    "light_azimuth": (-np.pi, np.pi), "light_color": (0.5, 1), "bg_kind": (0, 4), "bg_freq": (1.5, 6),
    "bg_angle": (0, np.pi), "bg_offset": (0, 1), "noise_std": (0, 0.05), "glasses": (0, 1),
    "skin_color": (0, 1), "hair_color": (0, 1), "eye_color": (0, 1), "bg_color_a": (0, 1),
    "bg_color_b": (0, 1),
}


def _take(f, idx):
  return {k: v[idx] for k, v in f.items()}


def _config(**kw):
  return data_config("synthfaces", **{**dict(resolution=32, num_v=40, num_c=24, num_test=16, seed=3), **kw})


@pytest.fixture(scope="module")
def factors():
  return sf.sample_factors(48, seed=7, num_identities=6, glasses_prob=0.5)


def test_factor_groups_cover_every_key(factors):
  assert set(factors) == set(sf.FACTOR_KEYS)
  groups = [sf.IDENTITY_KEYS, sf.EXPRESSION_KEYS, sf.ACCESSORY_KEYS, sf.RESIDUAL_KEYS]
  assert sum(len(g) for g in groups) == len(set().union(*groups)) == len(sf.FACTOR_KEYS)
  for k, v in factors.items():
    assert len(v) == 48, k


def test_factor_ranges():
  f = sf.sample_factors(3000, seed=1, num_identities=20, glasses_prob=0.3, textures=True)
  for key, (lo, hi) in _RANGES.items():
    assert f[key].min() >= lo and f[key].max() <= hi, key
  for key in sf.EXPRESSION_KEYS:  # the expression spans its range
    lo, hi = _RANGES[key]
    assert f[key].min() < lo + 0.01 * (hi - lo) and f[key].max() > hi - 0.01 * (hi - lo), key
  np.testing.assert_allclose(f["light_color"].max(axis=1), 1.0)
  assert set(np.unique(f["bg_kind"])) == set(range(5))
  assert set(np.unique(f["hair_style"])) == {0, 1, 2}
  assert 0.25 < f["glasses"].mean() < 0.35
  assert set(np.unique(f["identity"])) == set(range(20))
  no_tex = sf.sample_factors(500, seed=1, textures=False)
  assert no_tex["bg_kind"].max() == 3


def test_identities_are_consistent():
  single = sf.sample_factors(100, seed=2)
  assert (single["identity"] == 0).all() and (single["glasses"] == 0).all()
  for k in ("face_aspect", "skin_color", "hair_color", "hair_style", "eye_color"):
    assert (single[k] == single[k][0]).all(), k  # one actor by default
  many = sf.sample_factors(400, seed=5, num_identities=8)
  other = sf.sample_factors(400, seed=9, num_identities=8)
  keys = ("face_aspect", "skin_color", "hair_color", "hair_style", "eye_color")
  for f in (many, other):
    for i in range(8):
      rows = f["identity"] == i
      for k in keys:
        assert (f[k][rows] == f[k][rows][0]).all(), (i, k)  # one look per identity
        if i == 0:  # identity 0 is the default actor
          np.testing.assert_array_equal(f[k][rows][0], single[k][0])
  # The attributes are a function of the identity index only: the same across seeds.
  i = many["identity"].tolist().index(3)
  j = other["identity"].tolist().index(3)
  np.testing.assert_array_equal(many["skin_color"][i], other["skin_color"][j])


def test_determinism_and_batch_independence(factors):
  again = sf.sample_factors(48, seed=7, num_identities=6, glasses_prob=0.5)
  chex.assert_trees_all_equal(factors, again)
  part = sf.sample_factors(13, seed=7, start=20, num_identities=6, glasses_prob=0.5)
  chex.assert_trees_all_equal(part, _take(factors, slice(20, 33)))
  assert not np.array_equal(sf.sample_factors(48, seed=8)["smile"], factors["smile"])
  for domain in sf.DOMAINS:
    full = sf.render(factors, domain, 32, chunk_pixels=5 * 32 * 32)
    np.testing.assert_array_equal(full, sf.render(factors, domain, 32))
    np.testing.assert_array_equal(sf.render(part, domain, 32), full[20:33])
    one = sf.render(_take(factors, slice(31, 32)), domain, 32)
    np.testing.assert_array_equal(one, full[31:32])


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes_and_range(factors, res):
  f = _take(factors, slice(0, 6))
  for domain in sf.DOMAINS:
    img = sf.render(f, domain, res)
    chex.assert_shape(img, (6, res, res, 3))
    chex.assert_type(img, np.float32)
    chex.assert_tree_all_finite(img)
    assert img.min() >= -1 and img.max() <= 1


def test_c_has_black_background_and_ignores_residual(factors):
  c = sf.render(factors, "c", 32)
  np.testing.assert_array_equal(c[:, :3, :3], -1.0)  # top corners: background
  np.testing.assert_array_equal(c[:, :3, -3:], -1.0)
  shuffled = dict(factors)
  perm = np.random.default_rng(0).permutation(48)
  for k in sf.RESIDUAL_KEYS:
    shuffled[k] = factors[k][perm]
  np.testing.assert_array_equal(sf.render(shuffled, "c", 32), c)
  c_only = {k: v for k, v in factors.items() if k not in sf.RESIDUAL_KEYS}
  np.testing.assert_array_equal(sf.render(c_only, "c", 32), c)  # residual keys not even needed
  v = sf.render(factors, "v", 32)
  assert np.abs(v[:, :3, :3] + 1).mean() > 0.1  # V has a background


def test_mix_and_match(factors):
  a, b = _take(factors, slice(0, 8)), _take(factors, slice(8, 16))
  mix = {k: (b[k] if k in sf.RESIDUAL_KEYS else a[k]) for k in factors}
  np.testing.assert_array_equal(sf.render(mix, "c", 32), sf.render(a, "c", 32))
  v_mix, v_a, v_b = (sf.render(x, "v", 32) for x in (mix, a, b))
  assert np.abs(v_mix - v_a).mean() > 0.05 and np.abs(v_mix - v_b).mean() > 0.05
  # Only the lighting changes: with the background and noise of `a`, V differs inside the head.
  light_only = dict(a, light_azimuth=b["light_azimuth"], light_color=b["light_color"])
  diff = np.abs(sf.render(light_only, "v", 32) - v_a).mean(-1)
  head = (sf.render(a, "c", 32) > -1).any(-1)
  assert diff[head].mean() > 0.05
  # Swapping the expression changes C.
  expr = dict(a, **{k: b[k] for k in sf.EXPRESSION_KEYS})
  assert np.abs(sf.render(expr, "c", 32) - sf.render(a, "c", 32)).mean() > 0.01


@pytest.mark.parametrize("key,lo,hi", [("mouth_open", 0, 1), ("smile", -1, 1), ("eye_open", 0, 1),
                                       ("brow", -1, 1), ("tilt", -1, 1)])
def test_expression_is_visible_at_32px(factors, key, lo, hi):
  f = _take(factors, slice(0, 8))
  f_lo, f_hi = dict(f), dict(f)
  f_lo[key], f_hi[key] = np.full(8, lo, np.float32), np.full(8, hi, np.float32)
  diff = lambda domain: np.abs(sf.render(f_lo, domain, 32) - sf.render(f_hi, domain, 32)).max(-1)
  changed = (diff("c") > 0.25).sum(axis=(1, 2))
  assert changed.min() >= 6, (key, changed)  # every render: several pixels change clearly
  # In V the light may leave a dark face in shadow: ask it of most photos, with less contrast.
  changed = (diff("v") > 0.15).sum(axis=(1, 2))
  assert (changed >= 4).sum() >= 6, (key, changed)
  if key == "mouth_open":
    diff = np.abs(sf.render(f_lo, "c", 32) - sf.render(f_hi, "c", 32))
    assert diff.mean() > 0.02 and (diff.max(-1) > 0.5).sum(axis=(1, 2)).min() >= 10


def test_tilt_is_counter_clockwise(factors):
  rows = {}
  for t in (-1.0, 1.0):
    f = dict(_take(factors, slice(0, 1)), tilt=np.array([t], np.float32), glasses=np.zeros(1, np.int32),
             offset_x=np.zeros(1, np.float32), eye_open=np.ones(1, np.float32))
    ys, xs = np.nonzero((sf.render(f, "c", 64)[0] > 0.9).all(-1))  # the eye whites
    rows[t] = ys[xs >= 32].mean() - ys[xs < 32].mean()
  assert rows[1.0] < -2 and rows[-1.0] > 2  # tilt +1 lifts the right eye


def test_noise_is_gaussian_with_the_documented_std(factors):
  f = _take(factors, slice(0, 8))
  quiet = dict(f, noise_std=np.zeros(8, np.float32))
  loud = dict(f, noise_std=np.full(8, 0.05, np.float32))
  delta = (sf.render(loud, "v", 64) - sf.render(quiet, "v", 64)) / 2  # back to [0, 1] units
  base = sf.render(quiet, "v", 64)
  inside = (base > -0.8) & (base < 0.8)  # away from clipping
  assert abs(delta[inside].std() - 0.05) < 0.005 and abs(delta[inside].mean()) < 0.003


def test_vectors(factors):
  e, l = sf.expression_vector(factors), sf.lighting_vector(factors)
  chex.assert_shape(e, (48, len(sf.EXPRESSION_KEYS)))
  chex.assert_shape(l, (48, 5))
  np.testing.assert_allclose(e[:, 0], factors["mouth_open"])
  np.testing.assert_allclose(l[:, 0] ** 2 + l[:, 1] ** 2, 1, rtol=1e-6)
  np.testing.assert_allclose(np.arctan2(l[:, 1], l[:, 0]), factors["light_azimuth"], atol=1e-5)
  np.testing.assert_allclose(l[:, 2:], factors["light_color"])


def test_registered_source_train_and_test():
  cfg = _config()
  train, test = data.build(cfg, "train"), data.build(cfg, "test")
  assert train.sizes() == {"v": 40, "c": 24} and test.sizes() == {"v": 16, "c": 16}
  assert not train.paired and not test.paired
  for ds in (train, test):
    for name, arr in ds.extras.items():
      assert len(arr) == ds.sizes()[name.split("/")[0]], name
    for dom in sf.DOMAINS:
      chex.assert_shape(ds.domains[dom], (ds.sizes()[dom], 32, 32, 3))
      assert f"{dom}/mouth_open" in ds.extras and f"{dom}/expression" in ds.extras
  # Ground truth: the stored factors re-render the stored images exactly.
  for ds in (train, test):
    for dom in sf.DOMAINS:
      f = {k: ds.extras[f"{dom}/{k}"] for k in sf.FACTOR_KEYS}
      np.testing.assert_array_equal(sf.render(f, dom, 32), ds.domains[dom])
  f_test = {k: test.extras[f"v/{k}"] for k in sf.FACTOR_KEYS}
  np.testing.assert_array_equal(sf.render(f_test, "c", 32)[:, :2, :2], -1.0)
  # Unpaired and disjoint: every stream has its own factors.
  streams = [ds.extras[f"{d}/noise_seed"] for ds in (train, test) for d in sf.DOMAINS]
  allseeds = np.concatenate(streams)
  assert len(np.unique(allseeds)) == len(allseeds)
  ex_train, ex_test = train.extras["v/expression"], test.extras["v/expression"]
  assert not (ex_test[:, None, :] == ex_train[None, :, :]).all(-1).any()
  assert not np.array_equal(train.extras["v/smile"][:24], train.extras["c/smile"])
  # Deterministic, and the seed matters.
  np.testing.assert_array_equal(data.build(cfg, "test").domains["v"], test.domains["v"])
  assert not np.array_equal(data.build(_config(seed=4), "test").domains["v"], test.domains["v"])


def test_source_options():
  ds = data.build(_config(num_identities=5, glasses_prob=1.0, textures=False, resolution=16,
                          num_v=30, num_c=8), "train")
  assert (ds.extras["v/glasses"] == 1).all() and ds.extras["v/identity"].max() < 5
  assert ds.extras["v/bg_kind"].max() <= 3
  chex.assert_shape(ds.domains["c"], (8, 16, 16, 3))


def test_without_scikit_image(monkeypatch):
  monkeypatch.setattr(sf, "textures_available", lambda: False)
  ds = data.build(_config(num_v=64), "train")  # textures=True falls back to procedural patterns
  assert ds.extras["v/bg_kind"].max() <= 3
  assert sf.sample_factors(64, seed=0)["bg_kind"].max() <= 3
  with pytest.raises(ValueError, match="scikit-image"):
    sf.sample_factors(4, seed=0, textures=True)


@pytest.mark.parametrize("kw,match", [
    (dict(resolution=20), "multiple of 8"), (dict(resolution=8), "resolution"),
    (dict(num_v=0), "num_v"), (dict(num_test=-1), "num_test"), (dict(seed=-2), "seed"),
    (dict(glasses_prob=1.5), "glasses_prob"),
])
def test_source_bad_config(kw, match):
  with pytest.raises(ValueError, match=match):
    split = "test" if "num_test" in kw else "train"
    data.build(_config(**kw), split)


def test_bad_arguments(factors):
  with pytest.raises(ValueError, match="domain"):
    sf.render(factors, "x", 32)
  for res in (0, 8, 20, 33, 31.5):
    with pytest.raises(ValueError, match="resolution"):
      sf.render(factors, "c", res)
  with pytest.raises(KeyError, match="light_azimuth"):
    sf.render({k: v for k, v in factors.items() if k != "light_azimuth"}, "v", 32)
  with pytest.raises(ValueError, match="lengths"):
    sf.render(dict(factors, smile=factors["smile"][:3]), "c", 32)
  with pytest.raises(ValueError, match="n="):
    sf.sample_factors(0, seed=0)
  with pytest.raises(ValueError, match="seed"):
    sf.sample_factors(4, seed=-1)
  with pytest.raises(ValueError, match="num_identities"):
    sf.sample_factors(4, seed=0, num_identities=0)
  with pytest.raises(ValueError, match="split"):
    data.build(_config(), "validation")


def test_lord_grid_renders_every_identity_with_every_content_and_holds_actors_out():
  cfg = data_config("synthfaces_lord", resolution=16, num_identities=5, num_contents=3, test_identities=2)
  train, test = data.build(cfg, "train"), data.build(cfg, "test")
  np.testing.assert_array_equal(train.domains["identity"], np.repeat(np.arange(3), 3))
  np.testing.assert_array_equal(test.domains["identity"], np.repeat([3, 4], 3))
  np.testing.assert_array_equal(train.domains["content"], np.tile(np.arange(3), 3))
  np.testing.assert_array_equal(train.extras["image/content"], train.domains["content"])
  images = train.domains["image"]
  assert images.shape == (9, 16, 16, 3)
  # Ground truth: re-rendering identity 1 with content 2's expression and pose gives that image.
  settings = sf.sample_factors(3, seed=sf.stream_seed(cfg.seed, "grid", "content"), textures=cfg.textures and sf.textures_available())
  f = {k: v[[2]] for k, v in settings.items()}
  f.update(identity=np.array([1], np.int32), **sf._sample_identities(np.array([1])))
  np.testing.assert_array_equal(sf.render(f, "c", 16)[0], images[1 * 3 + 2])
  assert not np.array_equal(images[0], images[3]) and not np.array_equal(images[0], images[1])
  with pytest.raises(DataError, match=r"config.data.test_identities=5 must be an int in \[0, 5\)"):
    data.build(data_config("synthfaces_lord", resolution=16, num_identities=5, test_identities=5), "test")
