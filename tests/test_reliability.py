"""Issue 25: a broken checkpoint, a failed save, a changed config, a second run on one workdir and
an out-of-range value each end in one clear line, with nothing lost.

The checkpoint cases run on a small pytree with a real grain iterator (no compile); the engine
cases share one short run of ``uncoop_synthetic:test`` (``_synthetic_config`` of test_engine.py,
whose programs the suite's XLA cache already holds).
"""
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import time

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from disen_jax import checkpoint as ckptlib
from disen_jax import config_lib
from disen_jax import history
from disen_jax import train
from disen_jax import workdir as workdirlib
from disen_jax.data import folders
from disen_jax.errors import ConfigError
from tests.conftest import ROOT, load_config
from tests.test_engine import _synthetic_config  # its programs: the suite compiles them once

MAX_LINES = 12  # what a short output is: a warning or an error, not a cascade
# Any "Exception ignored" (e.g. orbax's "Event loop is closed" echoes) fails the test that caused it.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


# ----------------------------------------------------------------------------- checkpoints alone


def _state(step: int):
  return {"step": jnp.asarray(step, jnp.int32), "w": jnp.full((64, 32), float(step)),
          "pool": history.init(0, (4,))}  # a disabled image history saves too


def _iterator():
  return iter(grain.MapDataset.range(1000).to_iter_dataset())


def _saved(path, steps=(1, 2, 3)) -> ckptlib.Checkpointer:
  ckpt = ckptlib.Checkpointer(str(path))
  it = _iterator()
  for s in range(1, max(steps) + 1):
    next(it)
    if s in steps:
      ckpt.save(s, _state(s), it)
  return ckpt


def _garbage(path):
  for root, _, files in os.walk(path):
    for f in files:
      if os.sep + "d" in root:  # the array files (ocdbt data), not the metadata
        p = os.path.join(root, f)
        with open(p, "r+b") as fh:
          fh.write(np.random.default_rng(0).bytes(os.path.getsize(p)))


def _truncate(path):
  for root, _, files in os.walk(path):
    for f in files:
      if os.sep + "d" in root:
        os.truncate(os.path.join(root, f), 10)


BREAK = {
    "garbage": lambda step: _garbage(step / "state"),
    "truncated": lambda step: _truncate(step / "state"),
    "missing_metadata": lambda step: os.remove(step / "state" / "_METADATA"),
    "garbage_data_iterator": lambda step: (step / "data" / "process_0-of-1.json").write_text("{x"),
}


@pytest.mark.parametrize("how", sorted(BREAK))
def test_a_broken_newest_checkpoint_is_moved_aside_and_the_previous_restores(how, tmp_path, capfd,
                                                                             caplog):
  _saved(tmp_path).close()
  BREAK[how](tmp_path / "checkpoints" / "3")
  capfd.readouterr()
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  step, (state, it) = ckpt.restore_newest(lambda s: _state(s), _iterator())
  ckpt.close()
  assert step == 2 and int(state["step"]) == 2 and float(state["w"][0, 0]) == 2.0
  assert next(it) == 2  # the input pipeline continues after step 2's batches
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "3.corrupt"]
  out = capfd.readouterr()
  lines = (out.out + out.err).strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("warning: checkpoint ") and "3.corrupt" in lines[0]
  assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_when_no_checkpoint_restores_one_error_names_the_folder_and_nothing_moves(tmp_path):
  _saved(tmp_path).close()
  for s in (1, 2, 3):
    os.remove(tmp_path / "checkpoints" / str(s) / "state" / "_METADATA")
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  with pytest.raises(ckptlib.CheckpointError, match=f"no checkpoint in {tmp_path}/checkpoints restores"):
    ckpt.restore_newest(lambda s: _state(s), _iterator())
  ckpt.close()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "3"]


def test_a_checkpoint_of_another_structure_is_an_error_not_corruption(tmp_path):
  _saved(tmp_path).close()
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  other = lambda s: dict(_state(s), w=jnp.zeros((64, 16)))  # noqa: E731
  with pytest.raises(ckptlib.CheckpointError, match=r"another structure.*w: saved \(64, 32\), needed \(64, 16\)"):
    ckpt.restore_newest(other, _iterator())
  ckpt.close()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "3"]


def test_a_failed_save_says_why_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch, capfd):
  ckpt = _saved(tmp_path, steps=(1, 2))
  capfd.readouterr()

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path))

  monkeypatch.setattr(ckptlib.DataHandler, "save", full)
  monkeypatch.setattr(ckptlib.DataHandler, "async_save", full, raising=False)
  with pytest.raises(ckptlib.CheckpointError) as e:
    ckpt.save(3, _state(3), _iterator())
  assert str(e.value).startswith(f"checkpoint at step 3 not written: no space left on device "
                                 f"({tmp_path}/checkpoints/3)")
  out = capfd.readouterr()
  assert out.out + out.err == ""  # the error says it all: orbax's own ERROR records are not printed
  monkeypatch.undo()
  ckpt.close()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]  # no half-written step 3
  ckpt = ckptlib.Checkpointer(str(tmp_path))
  assert ckpt.restore_newest(lambda s: _state(s), _iterator())[0] == 2
  ckpt.close()


# ----------------------------------------------------------------------------- ranges


@pytest.mark.parametrize("field,value,message", [
    ("optim.lr", -1.0, "config.optim.lr=-1.0 must be > 0"),
    ("optim.lr", 0.0, "config.optim.lr=0.0 must be > 0"),
    ("history_size", -1, "config.history_size=-1 must be >= 0"),
    ("optim.b1", 1.5, r"config.optim.b1=1.5 must be in \[0, 1\)"),
    ("data.resolution", 0, "config.data.resolution=0 must be > 0"),
])
def test_out_of_range_values_are_refused_before_compiling(field, value, message, tmp_path):
  config = load_config("uncoop_faces", "test")
  with config.unlocked():
    parent, _, name = field.rpartition(".")
    (config[parent] if parent else config)[name] = value
  with pytest.raises(ConfigError, match=message):
    train.train_and_evaluate(config, str(tmp_path))
  assert os.listdir(tmp_path) == []  # refused before the workdir is touched


def test_a_module_declares_the_ranges_of_its_own_fields():
  config = load_config("uncoop_faces", "test")
  config_lib.check_ranges(config, {"model.num_blocks": "[6, inf)"}, {"model.num_blocks": "[0, inf)"})
  with pytest.raises(ConfigError, match=r"config.model.num_blocks=4 must be >= 6"):
    config_lib.check_ranges(config, {"model.num_blocks": "[6, inf)"})


# ----------------------------------------------------------------------------- the lock


def test_one_run_per_workdir_and_a_killed_run_does_not_block(tmp_path):
  with workdirlib.Lock(str(tmp_path)):
    with pytest.raises(ConfigError, match=rf"--workdir={tmp_path} is in use by pid {os.getpid()} on host "):
      with workdirlib.Lock(str(tmp_path)):
        pass
  code = (f"import sys, time; from disen_jax import workdir; lock = workdir.Lock({str(tmp_path)!r}); lock.__enter__(); "
          "print('locked', flush=True); time.sleep(60)")
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.stdout.readline().strip() == "locked"
  with pytest.raises(ConfigError, match=f"in use by pid {proc.pid} "):
    workdirlib.Lock(str(tmp_path)).__enter__()
  proc.kill()
  proc.wait()
  with workdirlib.Lock(str(tmp_path)):  # the kernel released the dead process's lock
    pass


# ----------------------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """A run with checkpoints at steps 2, 4 and 6."""
  workdir = str(tmp_path_factory.mktemp("run") / "run")
  train.train_and_evaluate(_synthetic_config(), workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6"]
  return workdir


def _copy(run, tmp_path) -> str:
  shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
  return str(tmp_path / "run")


def test_the_engine_resumes_from_the_newest_good_checkpoint_and_records_the_config(
    finished_run, tmp_path, capfd):
  workdir = _copy(finished_run, tmp_path)
  _garbage(tmp_path / "run" / "checkpoints" / "6" / "state")
  capfd.readouterr()
  state, _ = train.train_and_evaluate(_synthetic_config(log_every=2), workdir)  # a resume-safe change
  assert int(state.step) == 6
  out = capfd.readouterr()
  assert "warning: checkpoint" in out.out and "Resumed from" in out.out and "at step 4" in out.out
  assert len((out.out + out.err).splitlines()) < MAX_LINES
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["2", "4", "6", "6.corrupt"]
  lines = (tmp_path / "run" / workdirlib.HISTORY_FILE).read_text().splitlines()
  assert [json.loads(l)["changes"] for l in lines] == [{}, {"log_every": [1, 2]}]
  assert json.loads(lines[-1])["step"] == 4
  assert json.load(open(tmp_path / "run" / "config.json"))["log_every"] == 2


def test_a_changed_model_is_refused_naming_both_values_and_config_json_is_kept(finished_run, tmp_path):
  workdir = _copy(finished_run, tmp_path)
  before = (tmp_path / "run" / "config.json").read_text()
  config = _synthetic_config()
  config.model.hidden = 64
  config.optim.b1 = 0.9
  with pytest.raises(ConfigError, match=r"config.model.hidden: 32 in the workdir, 64 now; "
                                        r"config.optim.b1: 0.5 in the workdir, 0.9 now"):
    train.train_and_evaluate(config, workdir)
  assert (tmp_path / "run" / "config.json").read_text() == before


def _main(*args):
  return subprocess.run([sys.executable, "-m", "disen_jax.main", *args], cwd=ROOT,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
                        timeout=120)


def test_cli_when_no_checkpoint_restores_one_error_line_and_no_cascade(finished_run, tmp_path):
  """Garbage arrays in every checkpoint: orbax's failed reads used to print hundreds of
  ``Event loop is closed`` tracebacks at exit."""
  workdir = _copy(finished_run, tmp_path)
  for s in (2, 4, 6):
    _garbage(tmp_path / "run" / "checkpoints" / str(s) / "state")
  out = _main("--config=configs/uncoop_synthetic.py:test", "--config.num_steps=6",
              "--config.checkpoint_every=2", "--config.eval_every=100", f"--workdir={workdir}")
  assert out.returncode == 1
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr[-3000:]
  assert lines[0].startswith(f"error: no checkpoint in {workdir}/checkpoints restores")
  assert "Event loop is closed" not in out.stdout + out.stderr


def test_cli_second_run_on_a_workdir_in_use_is_refused_at_once(tmp_path):
  held = workdirlib.Lock(str(tmp_path))
  with held:
    start = time.time()
    out = _main("--config=configs/uncoop_synthetic.py:test", f"--workdir={tmp_path}")
  assert out.returncode == 1 and time.time() - start < 60
  assert out.stderr.strip().splitlines() == [
      f"error: --workdir={tmp_path} is in use by " + open(tmp_path / ".lock").read().strip()
      + ": wait for that run to end (or stop it), or use another workdir"]


# ----------------------------------------------------------------------------- real-world folders


def test_images_without_a_known_extension_are_found_by_content(tmp_path):
  Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "000001", format="JPEG")
  Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "000002.img", format="PNG")
  Image.new("RGB", (8, 8)).save(tmp_path / "000003.png")
  (tmp_path / "list_attr.txt").write_text("not an image")
  names = [os.path.basename(p) for p in folders.list_images(str(tmp_path))]
  assert names == ["000001", "000002.img", "000003.png"]
  ds = folders.build(_folders_config({"v": str(tmp_path)}), "train")
  assert ds.sizes() == {"v": 3}


def test_a_folder_without_images_lists_what_it_saw(tmp_path):
  for name in ("a.txt", "b.csv", "c.json", "d.md", "e.txt", "f.txt"):
    (tmp_path / name).write_text("x")
  with pytest.raises(ValueError, match=r"config.data.folders.v: no images .* it holds a.txt, b.csv, "
                                       r"c.json, d.md, e.txt, \.\.\. \(6 in all\)"):
    folders.build(_folders_config({"v": str(tmp_path)}), "train")


def _folders_config(dirs):
  c = config_lib.data("folders")
  c.folders = dirs
  c.resolution = 8
  return c
