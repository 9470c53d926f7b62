"""Translate mode on a :test run, and the faces evaluator's pieces on hand-made cases."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from disen_jax import train
from disen_jax import translate
from disen_jax.data import folders, synthfaces
from disen_jax.errors import ConfigError, DataError
from disen_jax.evaluation import faces
from tests.conftest import ROOT, load_config


@pytest.fixture(scope="module")
def faces_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run") / "uncoop")
  config = load_config("uncoop_faces", "test")
  train.train_and_evaluate(config, workdir)
  return workdir, config


def _write_images(folder, sizes):
  os.makedirs(folder, exist_ok=True)
  f = synthfaces.sample_factors(len(sizes), seed=3)
  imgs = synthfaces.render(f, "v", 32)
  for i, (img, size) in enumerate(zip(imgs, sizes)):
    u8 = np.uint8(np.clip((img + 1) * 127.5, 0, 255))
    Image.fromarray(u8).resize((size, size)).save(os.path.join(folder, f"img{i}.png"))


@pytest.mark.xdist_group("uncoop")  # after the same run in test_engine: its programs are cached
def test_translate_both_directions(faces_run, tmp_path, capsys):
  workdir, config = faces_run
  res = config.data.resolution
  _write_images(tmp_path / "in", [res, res, 2 * res])
  written = translate.translate_folder(workdir, str(tmp_path / "in"), str(tmp_path / "out"),
                                       direction="v2c")
  assert sorted(os.path.basename(p) for p in written) == ["img0.png", "img1.png", "img2.png"]
  assert "1 of 3 images are not" in capsys.readouterr().out
  assert Image.open(written[0]).size == (res, res)
  with pytest.raises(ConfigError, match="--reference"):
    translate.translate_folder(workdir, str(tmp_path / "in"), str(tmp_path / "out2"), direction="c2v")
  written = translate.translate_folder(workdir, str(tmp_path / "in"), str(tmp_path / "out2"),
                                       direction="c2v", reference=str(tmp_path / "in" / "img0.png"))
  assert len(written) == 3
  with pytest.raises(ConfigError, match=r"--direction='x2y'.*\['c2v', 'v2c'\]"):
    translate.translate_folder(workdir, str(tmp_path / "in"), str(tmp_path / "out3"), direction="x2y")


@pytest.mark.xdist_group("uncoop")
def test_translate_names_a_corrupt_file(faces_run, tmp_path):
  workdir, config = faces_run
  _write_images(tmp_path / "in", [config.data.resolution])
  (tmp_path / "in" / "broken.jpg").write_bytes(b"not an image")
  with pytest.raises(ValueError, match="broken.jpg"):
    translate.translate_folder(workdir, str(tmp_path / "in"), str(tmp_path / "out"), direction="v2c")


def test_translate_without_a_run_is_a_clear_error(tmp_path):
  with pytest.raises(DataError, match="config.json"):
    translate.translate_folder(str(tmp_path), str(tmp_path), str(tmp_path / "out"), direction="v2c")


def test_mix_is_face_of_one_and_residual_of_the_other():
  a = synthfaces.sample_factors(4, seed=1)
  b = synthfaces.sample_factors(4, seed=2)
  m = faces.mix(a, b)
  for k in synthfaces.EXPRESSION_KEYS:
    np.testing.assert_array_equal(m[k], a[k])
  np.testing.assert_array_equal(m["light_azimuth"], b["light_azimuth"])
  assert np.all(m["noise_std"] == 0)
  # The C render of a mix ignores the residual entirely.
  np.testing.assert_array_equal(synthfaces.render(m, "c", 32), synthfaces.render(a, "c", 32))


def test_batched_chunks_pytree_arguments():
  x = np.arange(10.0)[:, None]
  tree = [np.arange(10.0), 2 * np.arange(10.0)]
  out = faces.batched(lambda a, t: a[:, 0] + t[0] + t[1], x, tree, size=3)
  np.testing.assert_array_equal(out, 4 * np.arange(10.0))


def test_faces_metrics_of_the_exact_maps_are_perfect():
  """An oracle that returns the exact renders scores the ceiling on the fidelity metrics."""
  config = load_config("uncoop_faces", "test")
  config.data.num_test = 16
  ds = synthfaces.build(config.data, "test")
  fv = faces.factors(ds, "v")
  lookup = {ds.domains["v"][i].tobytes(): i for i in range(len(ds.domains["v"]))}
  idx = lambda v: np.array([lookup[x.tobytes()] for x in np.asarray(v)])
  res = config.data.resolution

  def v2c(v):
    return synthfaces.render({k: x[idx(v)] for k, x in fv.items()}, "c", res)

  def residual(v):
    return idx(v)[:, None].astype(np.float32)

  fc = faces.factors(ds, "c")
  c_lookup = {ds.domains["c"][i].tobytes(): i for i in range(len(ds.domains["c"]))}

  def c2v(c, reference):
    ci = np.array([c_lookup[x.tobytes()] for x in np.asarray(c)])
    vi = idx(reference)
    return synthfaces.render(faces.mix({k: x[ci] for k, x in fc.items()}, {k: x[vi] for k, x in fv.items()}),
                             "v", res)

  out = faces.evaluate({"translate_v2c": v2c, "residual": residual, "translate_c2v": c2v}, ds,
                       config=config)
  assert out["c_fidelity_psnr"] == float("inf") and out["v_fidelity_psnr"] == float("inf")
  assert out["c_fidelity_ssim"] == pytest.approx(1.0) and out["v_fidelity_ssim"] == pytest.approx(1.0)
  assert out["expression_r2"] == pytest.approx(out["expression_r2_renders"])
  assert out["c_spread"] == pytest.approx(1.0)


@pytest.mark.xdist_group("cross_domain")  # after the same run in test_engine: its programs are cached
def test_cross_domain_translates_from_the_command_line(tmp_path):
  config = load_config("cross_domain_mnist", "test")
  if not os.path.isdir(config.data.mnist_dir):
    pytest.skip("shared MNIST files are absent")
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  _write_images(tmp_path / "in", [config.data.resolution] * 2)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  run = lambda *args: subprocess.run(
      [sys.executable, "-m", "disen_jax.main", "--mode=translate", f"--workdir={workdir}",
       f"--input={tmp_path / 'in'}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  out = run(f"--output={tmp_path / 'out'}", "--direction=x2y")
  assert out.returncode == 0, out.stderr[-2000:]
  assert sorted(os.listdir(tmp_path / "out")) == ["img0.png", "img1.png"]
  out = run(f"--output={tmp_path / 'ref'}", "--direction=y2x", f"--reference={tmp_path / 'in' / 'img0.png'}")
  assert out.returncode == 0, out.stderr[-2000:]
  assert len(os.listdir(tmp_path / "ref")) == 2
  out = run(f"--output={tmp_path / 'bad'}", "--direction=v2c")
  assert out.returncode == 1 and out.stderr.strip().splitlines()[-1] == (
      f"error: --direction='v2c': the run in {workdir} (method 'cross_domain') translates ['x2y', 'y2x']")


def test_entangler_dependence_tells_what_the_output_depends_on():
  rng = np.random.default_rng(0)
  c = rng.uniform(-1, 1, (64, 4, 4, 3)).astype(np.float32)
  r = [rng.normal(size=(64, 2, 2, 5)).astype(np.float32)]
  only_c = faces.entangler_dependence(lambda c, r: c, c, r)
  assert only_c["e_c_swap"] == pytest.approx(2.0, rel=0.2) and only_c["e_r_swap"] == 0.0
  only_r = faces.entangler_dependence(lambda c, r: np.tile(r[0][..., :3], (1, 2, 2, 1)), c, r)
  assert only_r["e_c_swap"] == 0.0 and only_r["e_c_blank"] == 0.0
  assert only_r["e_r_swap"] == pytest.approx(2.0, rel=0.2)
