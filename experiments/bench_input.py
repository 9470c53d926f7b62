"""Input pipeline throughput against the train step's consumption, and step time on 1 vs 8 devices.

  python experiments/bench_input.py --out=experiments/results/bench_input

1. Pipeline: images/s that ``data.iterator`` delivers (grain threads, default settings) at
   ``--resolution`` px and the paper's batch, for ``synthfaces`` (rendered in memory), ``folders``
   (the CMP Facades jpgs of ``--folders``, decoded and resized on the fly) and a tfds source
   (``celeb_a`` under ``tfds.testing.mock_data``: random 218 x 178 records, resized). Against it:
   the images/s that ``uncoop``'s train step consumes at the same batch and resolution (its
   paper-size model, ``configs/uncoop_faces.py``), so one can see whether the input is a bottleneck.
2. Sharding overhead: the train step of ``configs/uncoop_faces.py:cpu`` at global batch
   ``--global_batch`` on 1 and on 8 simulated CPU devices (each in a subprocess, since the device
   count is fixed when JAX starts). On one CPU both use the same cores, so the ratio shows what
   sharding and the collectives cost, not a speed-up.

Writes ``OUT/results.json`` and ``OUT/results.md``. Timings are wall-clock on whatever machine runs
it (the figures committed under ``experiments/results/bench_input`` say which); every figure is the
median of ``--repeats`` timed windows after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACADES = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "facades"))


def _median_rate(fn, *, repeats: int, items: int) -> float:
  """items / seconds of ``fn()``, the median over ``repeats`` timed calls."""
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    rates.append(items / (time.perf_counter() - t))
  return statistics.median(rates)


def pipeline_rate(ds, *, batch_size: int, batches: int, repeats: int, data_config) -> float:
  """Images/s delivered by the training iterator over ``ds`` (every image domain counts)."""
  from disen_jax import config_lib  # pylint: disable=g-import-not-at-top
  from disen_jax import data as datalib  # pylint: disable=g-import-not-at-top
  it = datalib.iterator(datalib.local_batches(ds, batch_size=batch_size, seed=0), data_config)
  per_batch = sum(batch_size for v in ds.domains.values() if len(v.shape) == 4)
  for _ in range(2):  # warm-up: threads started, buffers filled once
    next(it)
  return _median_rate(lambda: [next(it) for _ in range(batches)], repeats=repeats, items=batches * per_batch)


def load_config(arg: str | None):
  sys.path.insert(0, ROOT)
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module("configs.uncoop_faces").get_config(arg)


def pipeline_figures(args) -> dict:
  import ml_collections  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from disen_jax import config_lib  # pylint: disable=g-import-not-at-top
  from disen_jax import data as datalib  # pylint: disable=g-import-not-at-top
  config = load_config(None)
  res, batch = args.resolution, config.batch_size
  kw = dict(batch_size=batch, batches=args.batches, repeats=args.repeats)
  out = {}
  faces = ml_collections.ConfigDict(config.data.to_dict())
  faces.resolution, faces.num_v, faces.num_c = res, args.num_images, args.num_images
  t = time.perf_counter()
  ds = datalib.build(faces, "train")
  out["synthfaces"] = dict(images_per_s=pipeline_rate(ds, data_config=faces, **kw),
                           setup_s=time.perf_counter() - t, note="rendered into memory at setup")
  if os.path.isdir(args.folders):
    folders = config_lib.data("folders")
    folders.update(dict(resolution=res, split_subdirs=True, folders={"v": os.path.join(args.folders, "A"),
                                                                    "c": os.path.join(args.folders, "B")}))
    t = time.perf_counter()
    ds = datalib.build(folders, "train")
    out["folders"] = dict(images_per_s=pipeline_rate(ds, data_config=folders, **kw),
                          setup_s=time.perf_counter() - t,
                          note=f"jpgs of {os.path.relpath(args.folders, ROOT)}, decoded per batch")
  celeb = config_lib.data("celeb_a")
  celeb.resolution = res
  with tfds.testing.mock_data(num_examples=args.num_images, policy=tfds.testing.MockPolicy.USE_CODE):
    t = time.perf_counter()
    ds = datalib.build(celeb, "train").select(["image"])
    out["tfds celeb_a (mocked)"] = dict(images_per_s=pipeline_rate(ds, data_config=celeb, **kw),
                                        setup_s=time.perf_counter() - t,
                                        note="random 218x178 records generated per read, resized")
  return out


def step_time(config, *, steps: int, repeats: int) -> float:
  """Seconds per train step of ``config`` on this process's devices (median of ``repeats``)."""
  import jax  # pylint: disable=g-import-not-at-top
  from disen_jax import train  # pylint: disable=g-import-not-at-top
  training = train.setup_training(config)
  batches = [training.global_batch(training.batches[t]) for t in range(steps)]
  state = training.state

  def run():
    nonlocal state
    for b in batches:
      state, metrics = training.step_fn(0)(state, b)
    jax.block_until_ready(metrics)

  run()  # compile + warm-up
  return 1.0 / _median_rate(run, repeats=repeats, items=steps)


def consumption_figures(args) -> dict:
  config = load_config(None)
  config.data.resolution = args.resolution
  config.data.num_v = config.data.num_c = config.batch_size * args.steps
  seconds = step_time(config, steps=args.steps, repeats=args.repeats)
  return dict(config="configs/uncoop_faces.py (paper model)", resolution=args.resolution,
              batch_size=config.batch_size, step_s=seconds,
              images_per_s=2 * config.batch_size / seconds)  # a batch holds v and c images


def _step_time_worker(args) -> None:
  """Subprocess: one step-time figure on ``--devices`` simulated devices, printed as json."""
  config = load_config("cpu")
  config.batch_size = args.global_batch[0]
  config.data.num_v = config.data.num_c = config.batch_size * args.steps
  print(json.dumps(dict(devices=args.devices, step_s=step_time(config, steps=args.steps, repeats=args.repeats))))


def device_figures(args) -> list[dict]:
  rows = []
  for global_batch in args.global_batch:
    step_s = {}
    for devices in (1, 8):
      env = dict(os.environ, JAX_PLATFORMS="cpu",
                 XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
      cmd = [sys.executable, os.path.abspath(__file__), "--step_time_worker", f"--devices={devices}",
             f"--global_batch={global_batch}", f"--steps={args.steps}", f"--repeats={args.repeats}"]
      res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
      if res.returncode:
        raise RuntimeError(f"step-time worker on {devices} devices failed:\n{res.stderr[-3000:]}")
      step_s[devices] = json.loads(res.stdout.strip().splitlines()[-1])["step_s"]
    rows.append(dict(config="configs/uncoop_faces.py:cpu", global_batch=global_batch,
                     step_s_1_device=step_s[1], step_s_8_devices=step_s[8],
                     ratio_8_over_1=step_s[8] / step_s[1]))
  return rows


def markdown(results: dict) -> str:
  p, c, d = results["pipeline"], results["train_step"], results["devices"]
  lines = [
      "# Input pipeline and sharding benchmark", "",
      f"Machine: {results['machine']}. Command: `{results['command']}`.", "",
      f"## Pipeline throughput at {c['resolution']} px, batch {c['batch_size']}", "",
      "| source | images/s | x train-step consumption | setup (s) | note |", "|---|---|---|---|---|"]
  for name, r in p.items():
    lines.append(f"| {name} | {r['images_per_s']:.0f} | {r['images_per_s'] / c['images_per_s']:.0f}x | "
                 f"{r['setup_s']:.1f} | {r['note']} |")
  lines += ["", f"Train step ({c['config']}, {c['resolution']} px, batch {c['batch_size']}): "
            f"{c['step_s']:.2f} s/step = **{c['images_per_s']:.1f} images/s** consumed.", "",
            f"## Step time on 1 vs 8 simulated CPU devices ({d[0]['config']})", "",
            "| global batch | 1 device (s/step) | 8 devices (s/step) | 8 / 1 |", "|---|---|---|---|"]
  lines += [f"| {r['global_batch']} | {r['step_s_1_device']:.3f} | {r['step_s_8_devices']:.3f} | "
            f"{r['ratio_8_over_1']:.2f}x |" for r in d]
  lines += ["", "The 8 devices are simulated on the same cores (XLA's host platform), so the ratio is the "
            "cost of sharding and collectives, not a speed-up.", ""]
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", help="folder for results.json and results.md")
  parser.add_argument("--resolution", type=int, default=128)
  parser.add_argument("--num_images", type=int, default=256, help="examples per source (pipeline)")
  parser.add_argument("--folders", default=FACADES, help="a folder with A/train and B/train images")
  parser.add_argument("--batches", type=int, default=25, help="batches per timed pipeline window")
  parser.add_argument("--steps", type=int, default=3, help="train steps per timed window")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--global_batch", type=lambda v: [int(x) for x in v.split(",")], default=[8, 32],
                      help="comma-separated global batch sizes for the 1 vs 8 device step time")
  parser.add_argument("--step_time_worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--devices", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  sys.path.insert(0, ROOT)
  if args.step_time_worker:
    _step_time_worker(args)
    return
  if not args.out:
    parser.error("--out is required")
  load = os.getloadavg()[0]
  results = dict(machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f} "
                         "at the start",
                 command="python experiments/bench_input.py " + " ".join(sys.argv[1:]))
  results["pipeline"] = pipeline_figures(args)
  print(json.dumps(results["pipeline"], indent=2), flush=True)
  results["train_step"] = consumption_figures(args)
  print(json.dumps(results["train_step"], indent=2), flush=True)
  results["devices"] = device_figures(args)
  print(json.dumps(results["devices"], indent=2), flush=True)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(markdown(results))
  print(markdown(results))


if __name__ == "__main__":
  main()
