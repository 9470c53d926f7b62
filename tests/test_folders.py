"""Tests for the "folders" data source (a user's own image folders)."""
import pathlib

import numpy as np
import pytest
from PIL import Image

from disen_jax import data as datalib
from disen_jax.data import folders, lazy
from tests.conftest import data_config

FACADES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "facades"


def _config(folder_map, **kw):
  return data_config("folders", **{"resolution": 8, **kw, "folders": {k: str(v) for k, v in folder_map.items()}})


def _write(path, size, mode="RGB", fmt=None, value=128):
  path.parent.mkdir(parents=True, exist_ok=True)
  color = value if mode == "L" else (value,) * len(mode)
  Image.new(mode, size, color).save(path, format=fmt)


@pytest.fixture
def mixed(tmp_path):
  """One folder with png, jpg, grayscale, RGBA, bmp, webp, tiff images of different sizes."""
  d = tmp_path / "mixed"
  _write(d / "1.png", (20, 10))
  _write(d / "2.jpg", (10, 30))
  _write(d / "3.png", (16, 16), mode="L", value=255)
  _write(d / "4.png", (12, 9), mode="RGBA", value=0)
  _write(d / "10.bmp", (8, 8))
  _write(d / "11.webp", (9, 9))
  _write(d / "12.tiff", (40, 8))
  (d / "notes.txt").write_text("not an image")
  return d


def test_mixed_formats(mixed):
  ds = folders.build(_config({"v": mixed}), "train")
  assert ds.domains["v"].shape == (7, 8, 8, 3) and ds.domains["v"].dtype == np.float32
  x = np.asarray(ds.domains["v"])  # the train split decodes lazily
  assert x.min() >= -1.0 and x.max() <= 1.0
  np.testing.assert_allclose(x[2], 1.0)  # white grayscale -> RGB white
  np.testing.assert_allclose(x[3], -1.0)  # transparent black RGBA -> RGB black
  assert not ds.paired
  # Natural order: 1, 2, 3, 4, 10, 11, 12.
  names = [pathlib.Path(p).name for p in folders.list_images(str(mixed))]
  assert names == ["1.png", "2.jpg", "3.png", "4.png", "10.bmp", "11.webp", "12.tiff"]
  gray = folders.build(_config({"v": mixed}, channels=1), "train").domains["v"]
  assert gray.shape == (7, 8, 8, 1)


def test_resize_shorter_side_and_center_crop(tmp_path):
  arr = np.zeros((4, 12, 3), np.uint8)  # 12 wide, 4 tall: left/middle/right thirds
  arr[:, 4:8] = 255
  Image.fromarray(arr).save(tmp_path / "a.png")
  x = folders.load_image(str(tmp_path / "a.png"), 4, 3)
  assert x.shape == (4, 4, 3)
  np.testing.assert_allclose(x, 1.0, atol=1e-6)  # only the white middle third remains


def test_save_and_load_roundtrip(tmp_path):
  img = np.random.default_rng(0).uniform(-1, 1, size=(8, 8, 3)).astype(np.float32)
  path = str(tmp_path / "out" / "img.png")
  folders.save_image(path, img)
  np.testing.assert_allclose(folders.load_image(path, 8, 3), img, atol=1 / 127.5)
  folders.save_image(str(tmp_path / "g.png"), img[..., :1])
  assert folders.load_image(str(tmp_path / "g.png"), 8, 1).shape == (8, 8, 1)


def test_corrupt_file_is_named(mixed):
  (mixed / "5.jpg").write_bytes(b"this is not a jpeg")
  with pytest.raises(ValueError, match="5.jpg"):
    folders.build(_config({"v": mixed}), "train")


def test_missing_and_empty_folders(tmp_path, mixed):
  with pytest.raises(ValueError, match=r"config\.data\.folders\.c.*nowhere"):
    folders.build(_config({"v": mixed, "c": tmp_path / "nowhere"}), "train")
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "readme.txt").write_text("x")
  with pytest.raises(ValueError, match=r"config\.data\.folders\.c: no images.*empty"):
    folders.build(_config({"v": mixed, "c": tmp_path / "empty"}), "train")
  with pytest.raises(ValueError, match="config.data.resolution"):
    folders.build(_config({"v": mixed}, resolution=0), "train")


def test_split_subdirs(tmp_path):
  for split, n in (("train", 3), ("test", 2)):
    for i in range(n):
      _write(tmp_path / "A" / split / f"{i}.png", (8, 8))
  cfg = _config({"v": tmp_path / "A"})
  assert folders.build(cfg, "train").sizes() == {"v": 3}
  assert folders.build(cfg, "test").sizes() == {"v": 2}
  # Without split folders, the folder itself is read (auto mode).
  flat = tmp_path / "A" / "train"
  assert folders.build(_config({"v": flat}), "test").sizes() == {"v": 3}
  # Explicitly requested but missing: a clear error.
  with pytest.raises(ValueError, match="split_subdirs"):
    folders.build(_config({"v": flat}, split_subdirs=True), "test")
  # Turned off: the top folder holds no images itself.
  with pytest.raises(ValueError, match="no images"):
    folders.build(_config({"v": tmp_path / "A"}, split_subdirs=False), "train")


def test_paired(tmp_path):
  for i, v in enumerate((0, 100, 200)):
    _write(tmp_path / "A" / f"{i}.png", (8, 8), value=v)
    _write(tmp_path / "B" / f"{i}.jpg", (16, 16), value=v)
  ds = folders.build(_config({"v": tmp_path / "A", "c": tmp_path / "B"}, paired=True), "train")
  assert ds.paired and ds.sizes() == {"v": 3, "c": 3}
  v, c = np.asarray(ds.domains["v"]), np.asarray(ds.domains["c"])
  np.testing.assert_allclose(v.mean((1, 2, 3)), c.mean((1, 2, 3)), atol=0.05)

  _write(tmp_path / "B" / "7.jpg", (8, 8))
  with pytest.raises(ValueError, match=r"7\.jpg.*config\.data\.folders\.c"):
    folders.build(_config({"v": tmp_path / "A", "c": tmp_path / "B"}, paired=True), "train")
  # Unpaired, the extra file is fine and the domains differ in size.
  ds = folders.build(_config({"v": tmp_path / "A", "c": tmp_path / "B"}), "train")
  assert ds.sizes() == {"v": 3, "c": 4}


def test_small_training_split_is_decoded_once_into_memory(mixed):
  lazy_ds = datalib.build(_config({"v": mixed}, in_memory_mb=0), "train")  # 0: never
  assert isinstance(lazy_ds.domains["v"], lazy.Column)
  assert datalib.lazy_megabytes(lazy_ds) == 7 * 8 * 8 * 3 * 4 / 2**20
  kept = datalib.build(_config({"v": mixed}), "train")  # default cap 1024 MB
  assert isinstance(kept.domains["v"], np.ndarray)
  np.testing.assert_array_equal(kept.domains["v"], np.asarray(lazy_ds.domains["v"]))
  tiny_cap = 7 * 8 * 8 * 3 * 4 / 2**20 / 2
  assert isinstance(datalib.build(_config({"v": mixed}, in_memory_mb=tiny_cap), "train").domains["v"],
                    lazy.Column)
  with pytest.raises(ValueError, match=r"config\.data\.in_memory_mb"):
    datalib.build(_config({"v": mixed}, in_memory_mb=-1), "train")


@pytest.mark.skipif(not FACADES.is_dir(), reason=f"{FACADES} not present")
def test_real_facades():
  cfg = _config({"v": FACADES / "A", "c": FACADES / "B"}, paired=True)
  cfg.resolution = 32
  ds = folders.build(cfg, "test").materialize()
  assert ds.paired and ds.sizes() == {"v": 106, "c": 106}
  assert ds.domains["v"].shape == (106, 32, 32, 3)
  assert -1.0 <= ds.domains["c"].min() < ds.domains["c"].max() <= 1.0
  assert len(folders.list_images(str(FACADES / "A" / "train"))) == 400
