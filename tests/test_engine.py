"""The engine: every config's :test variant on 8 devices, resume, and bad input."""
import ast
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from disen_jax import checkpoint as ckptlib
from disen_jax import config_lib, evaluation, methods
from disen_jax import data as datalib
from disen_jax import train
from disen_jax.data import synthetic
from disen_jax.errors import ConfigError
from tests.conftest import ROOT, SHARED_DATA, load_config

CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                 if not p.endswith("__init__.py"))
_FACES = {"c_fidelity_psnr", "c_fidelity_ssim", "v_fidelity_psnr", "v_fidelity_ssim", "expression_r2",
          "expression_r2_renders", "c_spread"}
_RECALL = {f"{p}/{f}/{d}" for p in ("recall@1", "recall@1_pair") for f in ("shared", "exclusive", "pixels")
           for d in ("x2y", "y2x")} | {"shared_pair_ratio", "exclusive_pair_ratio"}
_CLASS_CONTENT = ({f"probe_{a}_from_{b}" for a in ("class", "content") for b in ("class", "content")}
                  | {"chance_class", "chance_content"}
                  | {f"{p}_{m}" for p in ("transfer", "copy") for m in ("l1", "psnr", "ssim")})
# What the final evaluation of each config's :test run must report.
EVAL_KEYS = {
    "uncoop_faces": _FACES | {"residual_r2", "e_c_swap", "e_c_blank", "e_r_swap"},
    "cyclegan_faces": _FACES,
    "uncoop_synthetic": {"abs_rho", "abs_rho_c", "corr_c_c", "corr_c_r", "corr_r_c", "corr_r_r"},
    "uncoop_facades": {"cycle_psnr/v2c2v", "cycle_ssim/v2c2v", "cycle_psnr/c2v2c", "cycle_ssim/c2v2c"},
    "cross_domain_mnist": _RECALL | {f"analogy_error{c}/{d}" for c in ("", "_copy") for d in "xy"},
    "cross_domain_facades": _RECALL,
    "lord_cars3d": _CLASS_CONTENT,
    "lord_coil20": _CLASS_CONTENT,
    "lord_synthfaces": _CLASS_CONTENT,
    "semisup_mnist": {"generator_error", "classifier_accuracy", "encoder_accuracy",
                      "reconstruction_mse/x", "reconstruction_psnr/x"},
    "ost_mnist": {"classifier_accuracy/b", "translation_accuracy/a2b"},
    "content_transfer_faces": {f"{m}{s}" for m in ("transfer", "removal")
                               for s in ("_psnr", "_ssim", "_psnr_copy", "_ssim_copy")}
                              | {"removal_p_glasses", "transfer_p_glasses", "glasses_accuracy",
                                 "identity_r2_transfer", "identity_r2_removal", "identity_r2_renders",
                                 "reconstruction_psnr_a", "reconstruction_psnr_b"},
}


def _params_equal(a, b):
  return all(np.array_equal(x, y) for x, y in
             zip(jax.tree_util.tree_leaves(jax.device_get(a)), jax.tree_util.tree_leaves(jax.device_get(b))))


# Configs of one method run on one xdist worker, one after another, so that programs they share
# (e.g. the cross_domain step on MNIST and on facades) come from the compilation cache.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(load_config(n).method))
                                  for n in CONFIGS])
def test_test_variant_trains_on_8_devices(name, tmp_path, num_devices):
  assert num_devices == 8
  config = load_config(name, "test")
  shared = os.path.normpath(SHARED_DATA)
  paths = jax.tree_util.tree_leaves(config.data.to_dict())
  absent = [p for p in paths if isinstance(p, str) and p.startswith(shared) and not os.path.exists(p)]
  if absent:  # a clone that has no ../shared/data beside it (our machines have)
    pytest.skip(f"shared data absent: {absent}")
  workdir = str(tmp_path / "run")
  state, final = train.train_and_evaluate(config, workdir)
  assert int(state.step) == config.num_steps
  for f in ("config.json", "metrics.jsonl", "eval_final.json"):
    assert os.path.isfile(os.path.join(workdir, f)), f
  assert os.listdir(os.path.join(workdir, "checkpoints"))
  assert glob.glob(os.path.join(workdir, "tensorboard", "events.*"))
  lines = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  train_lines = [l for l in lines if l["split"] == "train"]
  assert [l["step"] for l in train_lines] == list(range(1, config.num_steps + 1))
  assert all(np.isfinite(v) for l in lines for k, v in l.items() if k != "split")
  assert json.load(open(os.path.join(workdir, "eval_final.json"))) == pytest.approx(final)
  assert set(final) == EVAL_KEYS[name]
  if config.data.source != "synthetic":  # vectors have no sample grids
    assert glob.glob(os.path.join(workdir, "samples", "*.png"))
  # One checkpoint at the end
  sched = train.schedule(methods.spec(methods.get(config.method), config), config)
  saved = {config.num_steps} | {sched.end(k) for k in range(len(sched.phases))}  # and every phase's end
  assert sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))) == sorted(saved)


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_are_data_with_every_documented_field(name):
  """A config imports no method module, and has every engine, data and evaluator field."""
  tree = ast.parse(open(os.path.join(ROOT, "configs", f"{name}.py")).read())
  imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
  imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
  assert imported <= {"ml_collections", "disen_jax"}, imported
  for variant in (None, "test"):
    config = load_config(name, variant)
    assert set(config_lib.ENGINE) <= set(config) and set(config_lib.DATA) <= set(config.data)
    assert set(config.eval) == set(evaluation.names())
    assert set(config.evals) <= set(evaluation.names()) and config.evals


def _synthetic_config(**overrides):
  config = load_config("uncoop_synthetic", "test")
  config.num_steps = 6
  config.checkpoint_every = 2
  config.eval_every = 100
  for k, v in overrides.items():
    config[k] = v
  return config


def test_resume_equals_uninterrupted(tmp_path):
  config = _synthetic_config()
  full, _ = train.train_and_evaluate(config, str(tmp_path / "full"))
  with pytest.raises(train.Interrupted, match="rerun the same command"):
    train.train_and_evaluate(config, str(tmp_path / "split"), interrupt_at_step=3)
  assert ckptlib.Checkpointer(str(tmp_path / "split")).latest_step() == 3
  resumed, _ = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert int(resumed.step) == 6
  assert _params_equal(full.params, resumed.params)
  assert _params_equal(full.opt_state, resumed.opt_state)
  assert _params_equal(full.history, resumed.history)
  # Rerunning a finished run does not train further.
  again, _ = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert _params_equal(again.params, resumed.params)


@datalib.register("synthetic_with_nan")
def _nan_source(data_config, split):
  ds = synthetic.make("gaussian", data_config.num_train if split == "train" else data_config.num_test,
                      seed=0, split=split)
  if split == "train":
    ds.domains["v"][data_config.nan_index] = np.nan
  return ds


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
  config = _synthetic_config(num_steps=40, checkpoint_every=1)
  config.data.source = "synthetic_with_nan"
  # Put the NaN example in the batch of step 5 (0-based), so steps 1..5 are good.
  idx = datalib.batch_indices(config.data.num_train, config.batch_size, 5, seed=config.seed,
                              domain_id=sorted(["c", "v"]).index("v"))
  config.data.nan_index = int(idx[0])
  with pytest.raises(train.NonFiniteLossError, match=r"l_v.* at step 6"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  ckpt = ckptlib.Checkpointer(str(tmp_path / "run"))
  assert ckpt.latest_step() == 5
  config.data.source = "synthetic"
  restored = ckpt.restore(_init_state(config))  # the last good checkpoint restores, finite
  assert int(restored.step) == 5
  assert all(np.all(np.isfinite(l)) for l in jax.tree_util.tree_leaves(restored.params))


def _init_state(config):
  from disen_jax.methods import uncoop  # pylint: disable=g-import-not-at-top
  ds = datalib.build(config.data, "train")
  return uncoop.init(jax.random.PRNGKey(0), config, datalib.get_batch(ds, config.batch_size, 0, seed=0))


def test_a_missing_workdir_is_created_with_its_parents_and_a_file_is_an_error(tmp_path):
  train.train_and_evaluate(_synthetic_config(num_steps=2), str(tmp_path / "no" / "such" / "run"))
  assert os.path.isfile(tmp_path / "no" / "such" / "run" / "eval_final.json")
  (tmp_path / "file").write_text("")
  with pytest.raises(ConfigError, match="--workdir=.*file exists and is not a directory"):
    train.train_and_evaluate(_synthetic_config(), str(tmp_path / "file"))


def test_batch_not_divisible_by_devices_names_the_field(tmp_path):
  with pytest.raises(ValueError, match="config.batch_size=12"):
    train.train_and_evaluate(_synthetic_config(batch_size=12), str(tmp_path / "run"))


def test_unknown_source_and_method_name_the_field(tmp_path):
  config = _synthetic_config()
  config.data.source = "nope"
  with pytest.raises(ValueError, match="config.data.source='nope'"):
    train.train_and_evaluate(config, str(tmp_path / "a"))
  config = _synthetic_config(method="nope")
  with pytest.raises(ValueError, match="config.method='nope'"):
    train.train_and_evaluate(config, str(tmp_path / "b"))


def _main(*args, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "disen_jax.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=120)


def test_cli_unknown_field_and_bad_value_are_errors_naming_them(tmp_path):
  cfg = "--config=configs/uncoop_synthetic.py:test"
  out = _main(cfg, "--config.no_such_field=1", f"--workdir={tmp_path}/a")
  assert out.returncode != 0 and "no_such_field" in out.stderr
  out = _main(cfg, "--config.batch_size=abc", f"--workdir={tmp_path}/b")
  assert out.returncode != 0 and "batch_size" in out.stderr
  (tmp_path / "file").write_text("")
  out = _main(cfg, f"--workdir={tmp_path}/file")
  assert out.returncode == 1 and out.stderr.strip().splitlines() == [
      f"error: --workdir={tmp_path}/file exists and is not a directory"]
  out = _main("--config=configs/uncoop_synthetic.py:tset", f"--workdir={tmp_path}/c")
  assert out.returncode != 0 and "unknown config variant(s) ['tset']" in out.stderr


def _fresh_clone(dest) -> str:
  """The files of this checkout that a clone has (tracked, or new and not ignored), copied."""
  files = subprocess.run(["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True, check=True).stdout.split()
  for f in files:
    if os.path.isfile(os.path.join(ROOT, f)):
      os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
      shutil.copy(os.path.join(ROOT, f), os.path.join(dest, f))
  return str(dest)


@pytest.mark.xdist_group("uncoop")  # after the uncoop_faces :test run: its programs are cached
def test_the_readme_main_command_runs_on_a_fresh_clone(tmp_path):
  """The README's first command line (install, then the main job), run as a newcomer would in a
  clone with no runs/ folder, with the :test variant of its config."""
  lines = open(os.path.join(ROOT, "README.md")).read().splitlines()
  line = next(l for l in lines if l.startswith("python3 -m venv") and "disen_jax.main" in l)
  command = shlex.split(line.split("&&")[-1].replace(":cpu", ":test"))
  assert command[:3] == ["python", "-m", "disen_jax.main"], command
  clone = _fresh_clone(tmp_path / "clone")
  assert not os.path.exists(os.path.join(clone, "runs"))
  out = _main(*command[3:], cwd=clone)
  assert out.returncode == 0, out.stderr[-3000:]
  workdir = next(a.split("=", 1)[1] for a in command if a.startswith("--workdir="))
  assert os.path.isfile(os.path.join(clone, workdir, "eval_final.json"))


def test_cli_trains_with_an_override(tmp_path):
  out = _main("--config=configs/uncoop_synthetic.py:test", "--config.num_steps=3",
              f"--workdir={tmp_path}/run")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "step 3/3" in out.stdout
  assert json.load(open(tmp_path / "run" / "config.json"))["num_steps"] == 3


def test_sigterm_saves_and_the_same_command_resumes(tmp_path):
  workdir = tmp_path / "run"
  args = [sys.executable, "-m", "disen_jax.main", "--config=configs/uncoop_synthetic.py:test",
          "--config.num_steps=100000", "--config.checkpoint_every=100000", "--config.log_every=1",
          f"--workdir={workdir}"]
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 120
  while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 5):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-2000:]
  assert "SIGTERM" in err and "rerun the same command to resume" in err
  saved = ckptlib.Checkpointer(str(workdir)).latest_step()
  assert saved is not None and saved >= 5
  out = _main("--config=configs/uncoop_synthetic.py:test", f"--config.num_steps={saved + 2}",
              "--config.checkpoint_every=100000", f"--workdir={workdir}")
  assert out.returncode == 0 and f"Resumed from" in out.stdout and f"step {saved + 2}/" in out.stdout
