"""The grain input pipeline: order, epochs, paired/unpaired domains, process shards, lazy
decoding, augmentation and the iterator position in orbax checkpoints."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from disen_jax import checkpoint as ckptlib
from disen_jax import data as datalib
from disen_jax.data import images, lazy, pipeline
from tests.conftest import data_config


def _unpaired(na=12, nb=7):
  return datalib.Dataset({"a": np.arange(na, dtype=np.float32), "b": 100 + np.arange(nb, dtype=np.float32)})


def _stream(ds, batch_size, steps, **kw):
  batches = datalib.local_batches(ds, batch_size=batch_size, **kw)
  return [batches[t] for t in range(steps)]


def test_every_epoch_is_a_fresh_permutation_per_domain_and_the_seed_decides_it():
  ds = _unpaired()
  batches = _stream(ds, 4, 6, seed=0)  # 24 = two epochs of a (12), 3+ epochs of b (7)
  a = np.concatenate([b["a"] for b in batches])
  b = np.concatenate([b["b"] for b in batches])
  assert sorted(a[:12]) == list(range(12)) and sorted(a[12:]) == list(range(12))
  assert not np.array_equal(a[:12], a[12:])  # reshuffled
  assert not np.array_equal(a[:12], np.arange(12))
  for e in range(3):
    assert sorted(b[7 * e:7 * (e + 1)]) == list(100 + np.arange(7))
  again = _stream(ds, 4, 6, seed=0)
  assert all(np.array_equal(x["a"], y["a"]) and np.array_equal(x["b"], y["b"]) for x, y in zip(batches, again))
  other = np.concatenate([b["a"] for b in _stream(ds, 4, 6, seed=1)])
  assert not np.array_equal(a, other)
  # batch_indices names the same examples as the pipeline reads (domain "a" is stream 0).
  np.testing.assert_array_equal(datalib.batch_indices(12, 4, 2, seed=0, domain_id=0), batches[2]["a"])


def test_paired_domains_share_one_index():
  x = np.arange(10, dtype=np.float32)
  ds = datalib.Dataset({"x": x, "y": 3 * x}, paired=True)
  for batch in _stream(ds, 5, 4, seed=3):
    np.testing.assert_array_equal(batch["y"], 3 * batch["x"])


@pytest.mark.parametrize("paired", [False, True])
def test_two_processes_read_disjoint_covering_shards_that_rebuild_the_global_batch(paired):
  n = 16
  ds = (datalib.Dataset({"x": np.arange(n), "y": -np.arange(n)}, paired=True) if paired
        else _unpaired(n, n))
  key = "x" if paired else "a"
  one = _stream(ds, 8, 4, seed=5)
  shards = [_stream(ds, 8, 4, seed=5, process_index=p, process_count=2) for p in range(2)]
  for t in range(4):
    for k in one[t]:
      np.testing.assert_array_equal(np.concatenate([shards[0][t][k], shards[1][t][k]]), one[t][k])
  for epoch in range(2):  # two steps of 8 = one epoch of 16
    seen = [np.concatenate([shards[p][t][key] for t in (2 * epoch, 2 * epoch + 1)]) for p in range(2)]
    assert len(seen[0]) == len(seen[1]) == n // 2
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(np.arange(n))
  with pytest.raises(ValueError, match="config.batch_size=9"):
    datalib.local_batches(ds, batch_size=9, seed=0, process_count=2)


def test_lazy_domains_decode_on_read_and_once_per_paired_record():
  calls = []

  def decode(i):
    calls.append(i)
    return {"x": np.full((2, 2, 3), i, np.float32), "label": np.int32(i)}

  examples = lazy.Examples(range(20), decode, what="counting")
  assert calls == [0]  # only the first example, to learn the fields
  ds = datalib.Dataset(examples.columns(), paired=True)
  assert ds.domains["x"].shape == (20, 2, 2, 3) and ds.domains["label"].dtype == np.int32
  calls.clear()
  batch = datalib.get_batch(ds, 5, 1, seed=0)
  assert len(calls) == 5  # one decode per example for both domains
  np.testing.assert_array_equal(batch["x"][:, 0, 0, 0], batch["label"])
  full = ds.materialize()
  assert isinstance(full.domains["x"], np.ndarray)
  np.testing.assert_array_equal(full.domains["label"], np.arange(20))
  np.testing.assert_array_equal(np.asarray(ds.domains["x"][3:6]), full.domains["x"][3:6])
  with pytest.raises(ValueError, match="broken: cannot decode its first example.*KeyError"):
    lazy.Examples([{}], lambda r: {"x": r["image"]}, what="broken")


def test_augmentation_crops_and_flips_paired_domains_alike():
  rng = np.random.default_rng(0)
  img = rng.uniform(-1, 1, size=(40, 10, 10, 3)).astype(np.float32)
  cfg = data_config("synthetic", resolution=8, load_size=10, random_flip=True)
  paired = datalib.Dataset({"x": img, "y": img.copy()}, paired=True)
  batches = datalib.local_batches(paired, batch_size=20, seed=0,
                                  augment=pipeline.augmentation(cfg, paired=True))
  out = batches[0]
  assert out["x"].shape == (20, 8, 8, 3)
  np.testing.assert_array_equal(out["x"], out["y"])
  np.testing.assert_array_equal(batches[0]["x"], out["x"])  # deterministic
  # Every output is a crop of its source, some flipped.
  flips = 0
  for k in range(20):
    src = img[datalib.batch_indices(40, 20, 0, seed=0)[k]]
    windows = [src[i:i + 8, j:j + 8] for i in range(3) for j in range(3)]
    if any(np.array_equal(out["x"][k], w) for w in windows):
      continue
    assert any(np.array_equal(out["x"][k], w[:, ::-1]) for w in windows)
    flips += 1
  assert 0 < flips < 20
  unpaired = datalib.Dataset({"x": img, "y": img.copy()})
  out = datalib.local_batches(unpaired, batch_size=20, seed=0,
                              augment=pipeline.augmentation(cfg, paired=False))[0]
  assert out["x"].shape == (20, 8, 8, 3)
  assert pipeline.augmentation(data_config("synthetic", resolution=8), paired=True) is None
  with pytest.raises(ValueError, match="config.data.load_size=4"):
    images.decode_size(data_config("synthetic", resolution=8, load_size=4), "train")


def _state(step):
  return {"step": jnp.int32(step), "w": jnp.arange(3.0) + step}


def test_the_iterator_position_is_saved_with_the_state_and_resumes_with_the_next_batch(tmp_path):
  ds = _unpaired()
  batches = datalib.local_batches(ds, batch_size=4, seed=2)
  it = datalib.iterator(batches)
  for _ in range(3):
    next(it)
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  ckpt.save(3, _state(3), it)
  expected = [next(it) for _ in range(2)]
  state, resumed = ckpt.restore(_state(0), datalib.iterator(batches))
  assert int(state["step"]) == 3
  for want in expected:
    got = next(resumed)
    np.testing.assert_array_equal(got["a"], want["a"])
    np.testing.assert_array_equal(got["b"], want["b"])
  assert int(ckpt.restore(_state(0))["step"]) == 3  # the state alone restores too

  # Saved by 2 processes (equal states, one file each) -> restores in this 1-process run.
  data_dir = tmp_path / "checkpoints" / "3" / "data"
  saved = (data_dir / "process_0-of-1.json").read_text()
  (data_dir / "process_0-of-1.json").unlink()
  for p in range(2):
    (data_dir / f"process_{p}-of-2.json").write_text(saved)
  _, resumed = ckpt.restore(_state(0), datalib.iterator(batches))
  np.testing.assert_array_equal(next(resumed)["a"], expected[0]["a"])
  (data_dir / "process_1-of-2.json").write_text(json.dumps({"next_index": 7}))
  with pytest.raises(ValueError, match="saved states are missing or differ"):
    ckpt.restore(_state(0), datalib.iterator(batches))
  ckpt.close()


def test_a_checkpoint_without_the_data_item_restores_at_its_step(tmp_path):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  manager = ocp.CheckpointManager(str(tmp_path / "checkpoints"), options=ocp.CheckpointManagerOptions(create=True))
  manager.save(4, args=ocp.args.StandardSave(_state(4)))  # the layout before the data item
  manager.wait_until_finished()
  manager.close()
  batches = datalib.local_batches(_unpaired(), batch_size=4, seed=2)
  state, it = ckptlib.Checkpointer(str(tmp_path)).restore(_state(0), datalib.iterator(batches))
  assert int(state["step"]) == 4
  np.testing.assert_array_equal(next(it)["a"], batches[4]["a"])
