"""Train-step benchmark of ``uncoop`` and ``cyclegan``: ours (JAX) against the same networks and
update in PyTorch, and against the machine's measured matmul peak.

  python experiments/bench_steps.py --out=experiments/results/bench_steps
  python experiments/bench_steps.py --out=... --settings=uncoop:256px_b4,cyclegan:256px_b4 \
      --min_repeats=2 --append

For each setting (the ``:cpu`` configs; the paper's networks at 128 and 256 px, batch 1 and 4):
the compile time of our jitted step (jitted as the engine does: state donated, with
``train.compiler_options()``), then the median, min and max of the step time over repeated steps
(each blocked until ready), steps/s and images/s (images of each domain); the same for the
PyTorch reference (``experiments/reference_torch``, loaded with the same initial parameters),
timed in the same process, one JAX step and one torch step in turn so that both see the same
machine load; and the ratio ours/PyTorch. FLOPs per step: XLA's cost analysis of the step with
plain convolutions (``conv_impl="lax"``: the model's FLOPs); ``flops_executed`` is the count of
our compiled step (the CPU formulations' own count, close to it).
Divided by our step time they give the achieved FLOP/s, reported as a fraction of the peak: the
best of large f32 matmuls (XLA, numpy's BLAS, torch) timed at the start and the end of the run.

Repeats: after one warm-up step per framework, ``clip(budget_s / step, min_repeats,
max_repeats)`` timed steps each. The default run leaves out 256 px at batch 4 (1.5-2 min a step
per framework on 2 cores); ``--append`` adds settings to an existing ``OUT/results.json``.
Writes ``OUT/results.json`` ({setting: {...}, "machine": {...}}) and ``OUT/results.md``. Without
torch (``pip install -e .[bench]``) the torch columns are left out and the benchmark says so.
"""
from __future__ import annotations

import functools
import gc
import json
import os
import platform
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from configs import cyclegan_faces, uncoop_faces  # pylint: disable=g-import-not-at-top
from disen_jax import methods
from disen_jax import train

try:
  import torch  # pylint: disable=g-import-not-at-top
  from experiments.reference_torch import steps as torch_steps  # pylint: disable=g-import-not-at-top
except ImportError:  # the optional `bench` extra
  torch = torch_steps = None

CONFIGS = {"uncoop": uncoop_faces, "cyclegan": cyclegan_faces}
# name -> (method, config variant, resolution, batch); None keeps the config's value.
SETTINGS = {
    "uncoop:cpu": ("uncoop", "cpu", None, None),
    "cyclegan:cpu": ("cyclegan", "cpu", None, None),
    **{f"{m}:{res}px_b{b}": (m, None, res, b)
       for m in ("uncoop", "cyclegan") for res in (128, 256) for b in (1, 4)},
}
DEFAULT_SETTINGS = [s for s in SETTINGS if not s.endswith("256px_b4")]

_OUT = flags.DEFINE_string("out", "/tmp/bench_steps", "Results directory.")
_SETTINGS = flags.DEFINE_list("settings", DEFAULT_SETTINGS, f"Settings, of {list(SETTINGS)}.")
_APPEND = flags.DEFINE_bool("append", False, "Add to (or redo in) an existing OUT/results.json.")
_BUDGET = flags.DEFINE_float("budget_s", 20.0, "Seconds of timed steps per framework and setting.")
_MIN_REPEATS = flags.DEFINE_integer("min_repeats", 3, "Fewest timed steps per framework.")
_MAX_REPEATS = flags.DEFINE_integer("max_repeats", 20, "Most timed steps per framework.")
_IMPL = flags.DEFINE_string("conv_impl", "auto", "config.model.conv_impl of our step.")
_TORCH = flags.DEFINE_bool("torch", True, "Time the PyTorch reference (needs torch).")
_PAUSE = flags.DEFINE_float("pause_s", 0.05, "Idle time between timed steps (lets the other "
                            "framework's worker threads stop spinning).")


def make_config(setting: str, conv_impl: str):
  method, variant, resolution, batch = SETTINGS[setting]
  config = CONFIGS[method].get_config(variant)
  if resolution:
    config.data.resolution = resolution
  if batch:
    config.batch_size = batch
  config.model.conv_impl = conv_impl
  return config


def example_batch(config, seed: int = 0) -> dict:
  """Random images in [-1, 1] for both domains, NHWC."""
  size, n = config.data.resolution, config.batch_size
  keys = jax.random.split(jax.random.PRNGKey(seed), 2)
  return {d: jax.random.uniform(k, (n, size, size, config.model[f"{d}_channels"]), minval=-1, maxval=1)
          for d, k in zip(("v", "c"), keys)}


def cost_flops(stage) -> float:
  """FLOPs from XLA's cost analysis of a lowered or compiled computation."""
  analysis = stage.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis["flops"])


def jax_step(config, batch):
  """``(step, state, compile_s, flops_executed)``: our jitted step (state donated, as in the
  engine), compiled ahead of time."""
  method = methods.get(config.method)
  state = jax.jit(lambda rng, b: method.init(rng, config, b, None))(jax.random.PRNGKey(config.seed), batch)
  jitted = jax.jit(functools.partial(method.train_step, config=config), donate_argnums=0,
                   compiler_options=train.compiler_options())
  t = time.perf_counter()
  compiled = jitted.lower(state, batch).compile()
  return compiled, state, time.perf_counter() - t, cost_flops(compiled)


def model_flops(config, batch) -> float:
  """The model's FLOPs per step: XLA's cost analysis of the step with plain convolutions
  (``conv_impl="lax"``), lowered (not compiled: within 1% of the compiled count, 20x sooner)."""
  config = make_config_copy(config, conv_impl="lax")
  method = methods.get(config.method)
  state = jax.eval_shape(lambda rng, b: method.init(rng, config, b, None), jax.random.PRNGKey(0), batch)
  return cost_flops(jax.jit(functools.partial(method.train_step, config=config)).lower(state, batch))


def make_config_copy(config, **model_overrides):
  config = config.copy_and_resolve_references()
  for k, v in model_overrides.items():
    config.model[k] = v
  return config


def torch_run(config, state, batch):
  """The torch reference with our initial parameters, and the batch as NCHW tensors."""
  torch.manual_seed(config.seed)
  run = torch_steps.build(config, {d: config.model[f"{d}_channels"] for d in ("v", "c")})
  run.load_flax(state)
  return run, {d: torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()) for d, x in batch.items()}


def matmul_peaks(sizes=(1024, 2048, 4096), repeats: int = 5) -> dict[str, float]:
  """The best f32 FLOP/s of square matmuls of ``sizes`` (median of ``repeats`` each), per library:
  XLA's, numpy's BLAS and (when installed) torch's oneDNN. The machine's peak is the best of
  them, so that no library's weaker matmul lowers the bar."""
  def best(matmul, make):
    top = 0.0
    for n in sizes:
      a = make(n)
      matmul(a)
      times = [_timed(lambda: matmul(a)) for _ in range(repeats)]
      top = max(top, 2 * n ** 3 / float(np.median(times)))
    return top

  xla = jax.jit(lambda x: x @ x)
  rand = lambda n: np.random.default_rng(0).standard_normal((n, n), np.float32)
  peaks = {"xla": best(lambda a: xla(a).block_until_ready(), lambda n: jnp.asarray(rand(n))),
           "numpy": best(lambda a: a @ a, rand)}
  if torch is not None:
    peaks["torch"] = best(lambda a: a @ a, lambda n: torch.from_numpy(rand(n)))
  return peaks


def _timed(fn) -> float:
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def _summary(times: list[float]) -> dict:
  return {"median": float(np.median(times)), "min": float(np.min(times)),
          "max": float(np.max(times)), "n": len(times)}


def bench_setting(setting: str, with_torch: bool) -> dict:
  config = make_config(setting, _IMPL.value)
  batch = example_batch(config)
  load_before = os.getloadavg()
  compiled, state, compile_s, flops_executed = jax_step(config, batch)
  flops = model_flops(config, batch)
  holder = {"state": state}

  def run_jax():
    holder["state"], metrics = compiled(holder["state"], batch)
    jax.block_until_ready((holder["state"], metrics))

  run = None
  if with_torch:
    run, tbatch = torch_run(config, state, batch)
  first_jax = _timed(run_jax)
  first_torch = _timed(lambda: run.step(tbatch)) if run else None
  warm = first_jax if run is None else max(first_jax, first_torch)
  repeats = int(np.clip(round(_BUDGET.value / warm), _MIN_REPEATS.value, _MAX_REPEATS.value))
  jax_times, torch_times = [], []
  for _ in range(repeats):  # interleaved: both frameworks see the same load
    time.sleep(_PAUSE.value)
    jax_times.append(_timed(run_jax))
    if run:
      time.sleep(_PAUSE.value)
      torch_times.append(_timed(lambda: run.step(tbatch)))
  jax_s = _summary(jax_times)
  step_s = jax_s["median"]
  out = {
      "method": config.method, "resolution": config.data.resolution, "batch": config.batch_size,
      "features": config.model.features, "num_blocks": config.model.num_blocks,
      "conv_impl": _IMPL.value, "compile_s": compile_s, "jax_first_step_s": first_jax,
      "jax_step_s": step_s, "jax_step": jax_s, "steps_per_s": 1 / step_s,
      "images_per_s": config.batch_size / step_s, "flops": flops, "flops_executed": flops_executed,
      "achieved_flops_per_s": flops / step_s, "repeats": repeats,
      "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
  }
  if run:
    torch_s = _summary(torch_times)
    out.update({"torch_first_step_s": first_torch, "torch_step_s": torch_s["median"],
                "torch_step": torch_s, "ratio": step_s / torch_s["median"],
                "torch_achieved_flops_per_s": flops / torch_s["median"]})
  del holder, compiled, run
  gc.collect()
  return out


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def machine() -> dict:
  import flax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  return {
      "cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
      "python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
      "flax": flax.__version__, "torch": torch.__version__ if torch else None,
      "torch_threads": torch.get_num_threads() if torch else None,
      "xla_flags": os.environ.get("XLA_FLAGS", ""), "backend": jax.default_backend(),
  }


def paper_times(results: dict) -> list[str]:
  """Our wall times next to the papers' stated training times (markdown lines)."""
  root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
  lines = []
  try:
    with open(os.path.join(root, "uncoop_synthetic", "results.json")) as f:
      synth = json.load(f)["seconds"]
    lines.append(f"* Synthetic benchmark (`experiments/uncoop_synthetic.py`, 20 runs of 60k steps, vmapped): "
                 f"{synth:.0f} s in all here; Harley et al.: about 1 hour per run on a GPU, i.e. ~20 h for "
                 f"the 20 runs, {20 * 3600 / synth:.0f}x our time (MLPs on 2-D data: launch-bound on a GPU).")
  except (OSError, KeyError):
    pass
  try:
    with open(os.path.join(root, "faces_fidelity", "results.json")) as f:
      faces = json.load(f)["seconds"]["total"]
    lines.append(f"* Faces comparison (`experiments/faces_fidelity.py`, 9 runs of 2,000 steps at 32 px, "
                 f"the `:cpu` networks): {faces / 60:.0f} min here, two runs at a time.")
  except (OSError, KeyError):
    pass
  paper = results.get("uncoop:128px_b4")
  if paper:
    days = paper["jax_step_s"] * 300_000 / 86400
    lines.append(f"* The paper's faces training (128 px, batch 4, 300k steps): about 3 days on a GTX 1080 Ti "
                 f"(~0.86 s/step). Our step at that setting takes {paper['jax_step_s']:.2f} s on this CPU: "
                 f"300k steps would take {days:.0f} days here ({days / 3:.1f}x the paper's GPU time).")
  return lines


def _peak(run: dict) -> float:
  """A run's matmul peak: the best library at the start or the end of the run."""
  return max(max(p.values()) for p in run["peaks_flops_per_s"])


def _range(values) -> str:
  return f"{min(values):.2f}-{max(values):.2f}"


def markdown(results: dict, runs: list[dict]) -> str:
  with_torch = any("ratio" in r for r in results.values())
  cols = ["setting", "px", "batch", "compile s", "JAX step s (min-max)", "steps/s", "images/s"]
  if with_torch:
    cols += ["PyTorch step s (min-max)", "ours / PyTorch"]
  cols += ["GFLOP/step", "achieved GFLOP/s", "of peak"]
  if with_torch:
    cols += ["PyTorch of peak"]
  cols += ["timed steps", "load"]
  rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  for name, r in results.items():
    j = r["jax_step"]
    row = [name, r["resolution"], r["batch"], f"{r['compile_s']:.0f}",
           f"{j['median']:.3f} ({j['min']:.3f}-{j['max']:.3f})", f"{r['steps_per_s']:.2f}",
           f"{r['images_per_s']:.2f}"]
    if with_torch and "ratio" in r:
      t = r["torch_step"]
      row += [f"{t['median']:.3f} ({t['min']:.3f}-{t['max']:.3f})", f"**{r['ratio']:.2f}**"]
    elif with_torch:
      row += ["n/a (no torch)", "n/a"]
    row += [f"{r['flops'] / 1e9:.1f}", f"{r['achieved_flops_per_s'] / 1e9:.1f}",
            f"{r['fraction_of_peak']:.0%}"]
    if with_torch:
      row += [f"{r['torch_achieved_flops_per_s'] / r['peak_flops_per_s']:.0%}" if "ratio" in r else "n/a"]
    row += [r["repeats"],
            _range([r["loadavg_before"][0], r["loadavg_after"][0]])]
    rows.append("| " + " | ".join(str(x) for x in row) + " |")
  info = runs[-1]
  head = [
      "# Train-step benchmark: ours (JAX) vs the same step in PyTorch, and vs the matmul peak", "",
      f"Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}; python {info['python']}, "
      f"jax {info['jax']}, flax {info['flax']}, torch {info['torch']} ({info['torch_threads']} "
      f"threads); XLA_FLAGS={info['xla_flags']!r}.", ""]
  for i, run in enumerate(runs):
    head.append(
        f"* Run {i + 1}: `{run['command']}`, {run['seconds'] / 60:.0f} min; 1-minute load average "
        f"{_range([run['loadavg_start'][0], run['loadavg_end'][0]])} (start-end); matmul peak "
        f"{_peak(run) / 1e9:.0f} GFLOP/s (best f32 matmul at the start and the end of the run: "
        + ", ".join(f"{lib} {max(p[lib] for p in run['peaks_flops_per_s']) / 1e9:.0f}"
                    for lib in run["peaks_flops_per_s"][0]) + ").")
  head += ["", "Our step as the engine jits it (state donated, `train.compiler_options()`), "
           f"`conv_impl={info['conv_impl']!r}`; one warm-up step per framework, then JAX and PyTorch "
           "in turn, timed steps each as listed (`clip(budget_s / step, min_repeats, max_repeats)`).", ""]
  if not with_torch:
    head += ["**PyTorch was not installed (or `--notorch`): no comparison.** "
             "`pip install -e .[bench]` adds it.", ""]
  notes = ["", "GFLOP/step: XLA's cost analysis of the step with plain convolutions (the model's FLOPs; "
           "the CPU formulations' own count is `flops_executed` in results.json). Of peak: achieved "
           "/ the run's matmul peak. Images/s: images of each "
           "domain per second. Ratio < 1: ours is faster.", "",
           "## Wall time against the papers", ""] + paper_times(results)
  return "\n".join(head + rows + notes) + "\n"


def main(argv):
  del argv
  unknown = [s for s in _SETTINGS.value if s not in SETTINGS]
  if unknown:
    raise ValueError(f"--settings: unknown {unknown}; expected some of {list(SETTINGS)}")
  with_torch = _TORCH.value and torch is not None
  if _TORCH.value and torch is None:
    print("PyTorch is not installed: timing JAX only. `pip install -e .[bench]` adds the "
          "reference (a CPU build of torch).", flush=True)
  os.makedirs(_OUT.value, exist_ok=True)
  path = os.path.join(_OUT.value, "results.json")
  results, runs = {}, []
  if _APPEND.value and os.path.exists(path):
    with open(path) as f:
      results = json.load(f)
    runs = results.pop("runs")
  info = {**machine(), "command": " ".join(["python experiments/bench_steps.py"] + sys.argv[1:]),
          "conv_impl": _IMPL.value, "budget_s": _BUDGET.value, "min_repeats": _MIN_REPEATS.value,
          "max_repeats": _MAX_REPEATS.value, "loadavg_start": os.getloadavg()}
  t0 = time.time()
  peaks = [matmul_peaks()]
  new = {}
  for name in _SETTINGS.value:
    new[name] = r = bench_setting(name, with_torch)
    print(f"{name}: compile {r['compile_s']:.1f} s, JAX {r['jax_step_s']:.3f} s/step"
          + (f", torch {r['torch_step_s']:.3f} s/step, ratio {r['ratio']:.2f}" if with_torch else "")
          + f", {r['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s, load {r['loadavg_after'][0]:.2f}", flush=True)
  peaks.append(matmul_peaks())
  runs.append({**info, "loadavg_end": os.getloadavg(), "seconds": time.time() - t0,
               "peaks_flops_per_s": peaks})
  for r in new.values():
    r.update(peak_flops_per_s=_peak(runs[-1]), run=len(runs) - 1,
             fraction_of_peak=r["achieved_flops_per_s"] / _peak(runs[-1]))
  results.update(new)
  results = {k: results[k] for k in SETTINGS if k in results}  # a stable order
  with open(path, "w") as f:
    json.dump({**results, "runs": runs}, f, indent=2)
  with open(os.path.join(_OUT.value, "results.md"), "w") as f:
    f.write(markdown(results, runs))
  print(f"wrote {path} and results.md ({runs[-1]['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
  app.run(main)
