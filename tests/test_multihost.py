"""Many devices and many processes on CPU: the same losses on 8 devices as on 1, and a 2-process
run (gloo collectives, 2 devices each) that trains like a 1-process run and whose checkpoint a
1-process run resumes. Runs with another device count or process count are subprocesses
(``tests/multihost_worker.py``), because this process has 8 simulated devices."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from disen_jax import checkpoint as ckptlib
from disen_jax import train
from tests import multihost_worker
from tests.conftest import ROOT

TIMEOUT = 240  # seconds for any subprocess; they are killed after it


def _worker(*args):
  return subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "multihost_worker.py"), *args],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_all(procs):
  """Waits for every process (bounded); kills all of them if any fails or times out."""
  try:
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.communicate()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(tree))]


def _npz_leaves(path):
  with np.load(path) as f:
    return [f[f"arr_{i}"] for i in range(len(f.files))]


def _assert_close(a, b, rtol=1e-5, atol=1e-6):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_uncoop_on_8_devices_has_the_losses_of_1_device(tmp_path, num_devices):
  assert num_devices == 8
  steps = 3
  out = str(tmp_path / "one_device.json")
  _wait_all([_worker("--config=uncoop_synthetic", "--devices=1", f"--steps={steps}", "--losses", f"--out={out}")])
  one = json.load(open(out))
  eight = multihost_worker.train_losses(train, multihost_worker.config_for("uncoop_synthetic", steps), steps)
  assert len(one) == len(eight) == steps and one[0].keys() == eight[0].keys()
  for a, b in zip(one, eight):
    for k in a:
      np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_two_processes_train_like_one_and_their_checkpoint_resumes_in_one(tmp_path):
  steps = 4
  port = _free_port()
  workdir = tmp_path / "two"
  outs = [str(tmp_path / f"params_{p}.npz") for p in range(2)]
  _wait_all([_worker("--config=uncoop_synthetic", "--devices=2", f"--steps={steps}", f"--workdir={workdir}",
                     f"--out={outs[p]}", "--num_processes=2", f"--process_id={p}",
                     f"--coordinator_address=localhost:{port}") for p in range(2)])
  p0, p1 = (_npz_leaves(o) for o in outs)
  for x, y in zip(p0, p1):
    np.testing.assert_array_equal(x, y)  # every process holds the same params
  saved = {f for f in os.listdir(workdir / "checkpoints" / str(steps) / "data") if f.endswith(".json")}
  assert saved == {"process_0-of-2.json", "process_1-of-2.json"}  # both took part in the save
  assert json.load(open(workdir / "eval_final.json"))
  lines = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
  assert [l["step"] for l in lines if l["split"] == "train"] == list(range(1, steps + 1))  # process 0 only

  # The same global batches in one process (8 devices here) give the same params.
  config = multihost_worker.config_for("uncoop_synthetic", steps)
  reference, _ = train.train_and_evaluate(config, str(tmp_path / "one"))
  _assert_close(p0, _leaves(reference.params))

  # The 2-process checkpoint of step 2 resumes in this 1-process run, at the next unseen batch.
  shutil.copytree(workdir, tmp_path / "resumed")
  shutil.rmtree(tmp_path / "resumed" / "checkpoints" / str(steps))
  ckpt = ckptlib.Checkpointer(str(tmp_path / "resumed"))
  assert ckpt.latest_step() == 2
  ckpt.close()
  resumed, _ = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  lines = [json.loads(l) for l in open(tmp_path / "resumed" / "metrics.jsonl")]
  assert [l["step"] for l in lines if l["split"] == "train"] == [*range(1, steps + 1), *range(3, steps + 1)]
  _assert_close(_leaves(resumed.params), _leaves(reference.params))


def test_sigterm_to_one_process_stops_all_at_the_same_step_with_a_checkpoint(tmp_path):
  """Process 0 takes its setup from flags, process 1 from the environment (as on a scheduler)."""
  workdir, port = tmp_path / "run", _free_port()
  common = ["-m", "disen_jax.main", "--config=configs/uncoop_synthetic.py:test", f"--workdir={workdir}",
            "--config.num_steps=100000", "--config.checkpoint_every=100000", "--config.log_every=1"]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [
      subprocess.Popen([sys.executable, *common, "--multihost", f"--coordinator_address=localhost:{port}",
                        "--num_processes=2", "--process_id=0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True),
      subprocess.Popen([sys.executable, *common], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=dict(env, DISEN_JAX_MULTIHOST="1", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="1",
                                           JAX_COORDINATOR_ADDRESS=f"localhost:{port}"))]
  metrics = workdir / "metrics.jsonl"
  try:
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
      assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
      time.sleep(0.2)
    procs[1].send_signal(signal.SIGTERM)
    errs = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.communicate()
  saved = sorted(os.listdir(workdir / "checkpoints"))
  assert len(saved) == 1 and int(saved[0]) >= 3, saved
  for p, err in zip(procs, errs):
    assert p.returncode == 130, err[-2000:]
    assert f"preemption notice (SIGTERM) to a process) at step {saved[0]}" in err
