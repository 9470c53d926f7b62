"""Where the step's time goes: forward + backward of each layer of the CycleGAN ResNet generator
and of the PatchGAN, ours (JAX) against the same layer in PyTorch.

  python experiments/bench_layers.py --budget_s=4 --out=experiments/results/bench_layers

The step benchmark (``bench_steps.py``) says how far our whole step is from PyTorch's; this one
says which layers make the gap. For every stage of the paper-size networks (width 64, 128 px;
``--batches``): the 7x7 input conv, the two stride-2 convs, one residual block (the generator has
nine), the two stride-2 transposed convs, the 7x7 output conv, and the whole spectral-norm
PatchGAN, each with its instance norm and activation as in ``disen_jax.nn``. Each stage is timed
as forward + backward (gradients of the parameters and of the input, against a fixed random
cotangent) jitted with ``train.compiler_options()`` (as the engine), in both of our conv
formulations (``impl="cpu"`` and ``"lax"``, see ``disen_jax/nn/convs.py``), and in PyTorch
with the same parameters (``experiments/reference_torch``), interleaved so that both see the
same load. GFLOP: XLA's cost analysis of the ``lax`` stage. "x per generator" weighs each
stage by how often the generator has it, so the table's last rows add up the generator's
forward + backward.
Writes ``OUT/results.json`` and ``OUT/results.md``.
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from disen_jax import train  # pylint: disable=g-import-not-at-top
from disen_jax.nn import layers  # pylint: disable=g-import-not-at-top
from disen_jax.nn.convs import Conv, ConvTranspose  # pylint: disable=g-import-not-at-top
from experiments import bench_steps  # pylint: disable=g-import-not-at-top

torch = bench_steps.torch
if torch is not None:
  from torch import nn as tnn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from experiments.reference_torch import nets as tnets  # pylint: disable=g-import-not-at-top

# --out, --budget_s (seconds of timed repeats per stage and framework) and --torch are
# bench_steps' flags.
_BATCHES = flags.DEFINE_list("batches", ["1", "4"], "Batch sizes.")
_RES = flags.DEFINE_integer("resolution", 128, "Input resolution of the generator.")
_WIDTH = flags.DEFINE_integer("features", 64, "Generator / PatchGAN width (the papers': 64).")

# name -> (kind, in channels, out channels, input size as a fraction of the resolution, count
# per generator). f = width.
def stages(f: int) -> dict:
  return {
      "c7s1 in (7x7, 3->f)": ("c7", 3, f, 1, 1),
      "down 1 (3x3 s2, f->2f)": ("down", f, 2 * f, 1, 1),
      "down 2 (3x3 s2, 2f->4f)": ("down", 2 * f, 4 * f, 2, 1),
      "res block (2x 3x3, 4f)": ("res", 4 * f, 4 * f, 4, 9),
      "up 1 (3x3 s2 transposed, 4f->2f)": ("up", 4 * f, 2 * f, 4, 1),
      "up 2 (3x3 s2 transposed, 2f->f)": ("up", 2 * f, f, 2, 1),
      "c7s1 out (7x7, f->3) + tanh": ("out7", f, 3, 1, 1),
      "PatchGAN (spectral norm, whole)": ("patchgan", 3, f, 1, 0),
  }


class Stage(nn.Module):
  """One stage of ``layers.ResnetTranslator`` (same layers, norms and activations), or a PatchGAN."""
  kind: str
  features: int
  impl: str

  @nn.compact
  def __call__(self, x):
    norm = lambda h: nn.InstanceNorm(use_bias=False, use_scale=False)(h)
    if self.kind == "c7":
      return nn.relu(norm(Conv(self.features, (7, 7), padding="REFLECT", impl=self.impl)(x)))
    if self.kind == "down":
      conv = Conv(self.features, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), impl=self.impl)
      return nn.relu(norm(conv(x)))
    if self.kind == "res":
      return layers.ResBlock(self.features, self.impl)(x)
    if self.kind == "up":
      return nn.relu(norm(ConvTranspose(self.features, (3, 3), impl=self.impl)(x)))
    if self.kind == "out7":
      return jnp.tanh(Conv(self.features, (7, 7), padding="REFLECT", impl=self.impl)(x))
    return layers.PatchGAN(self.features, impl=self.impl)(x)


def torch_stage(kind: str, cin: int, cout: int):
  """The same stage in PyTorch, its layers named as flax names them (``nets.load_flax``)."""

  class TorchStage(tnn.Module):

    def __init__(self):
      super().__init__()
      make = {"c7": lambda: tnn.Conv2d(cin, cout, 7), "down": lambda: tnn.Conv2d(cin, cout, 3, 2, 1),
              "res": lambda: tnets.ResBlock(cout), "up": lambda: tnets.ConvTransposeSame(cin, cout, 3),
              "out7": lambda: tnn.Conv2d(cin, cout, 7)}
      if kind == "patchgan":
        self.net = tnets.PatchGAN(cin, cout)
      else:
        name = {"res": "ResBlock_0", "up": "ConvTranspose_0"}.get(kind, "Conv_0")
        self.layers = tnn.ModuleDict({name: make[kind]()})

    def forward(self, x):
      if kind == "patchgan":
        return self.net(x)
      layer = next(iter(self.layers.values()))
      if kind == "c7":
        return F.relu(tnets._norm(layer(tnets._reflect(x, 3))))  # pylint: disable=protected-access
      if kind in ("down", "up"):
        return F.relu(tnets._norm(layer(x)))  # pylint: disable=protected-access
      if kind == "res":
        return layer(x)
      return torch.tanh(layer(tnets._reflect(x, 3)))  # pylint: disable=protected-access

  return TorchStage()


def bench_stage(kind: str, cin: int, cout: int, size: int, batch: int, with_torch: bool) -> dict:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, cin)).astype(np.float32))
  variables = Stage(kind, cout, "lax").init(jax.random.PRNGKey(0), x)  # the same for both impls
  out_shape = jax.eval_shape(Stage(kind, cout, "lax").apply, variables, x).shape
  cot = jnp.asarray(rng.standard_normal(out_shape).astype(np.float32))
  runs, flops = {}, None
  options = train.compiler_options()
  for impl in ("cpu", "lax"):
    module = Stage(kind, cout, impl)
    params, rest = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    loss = lambda p, inp, module=module: jnp.sum(module.apply({"params": p, **rest}, inp) * cot)
    fwd_bwd = jax.jit(jax.grad(loss, argnums=(0, 1)), compiler_options=options)
    lowered = fwd_bwd.lower(params, x)
    if impl == "lax":
      flops = bench_steps.cost_flops(lowered)
    compiled = lowered.compile()
    runs[f"jax_{impl}"] = lambda c=compiled: jax.block_until_ready(c(params, x))
  if with_torch:
    tmod = torch_stage(kind, cin, cout)
    target = tmod.net if kind == "patchgan" else tmod
    tnets.load_flax(target, variables["params"]["PatchGAN_0"] if kind == "patchgan" else variables["params"],
                    {"spectral_stats": variables["spectral_stats"]["PatchGAN_0"]} if kind == "patchgan" else None)
    tx = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    tcot = torch.from_numpy(np.asarray(cot).transpose(0, 3, 1, 2).copy())

    def torch_fwd_bwd():
      tmod.zero_grad(set_to_none=True)
      tx.grad = None
      tmod(tx).backward(tcot)

    runs["torch"] = torch_fwd_bwd
    with torch.no_grad():  # the same stage: both frameworks compute the same numbers
      ours = np.asarray(Stage(kind, cout, "lax").apply(variables, x))
      diff = float(np.max(np.abs(tmod(tx).numpy().transpose(0, 2, 3, 1) - ours)))
    if diff > 1e-3 * max(1.0, float(np.max(np.abs(ours)))):
      raise AssertionError(f"stage {kind}: PyTorch and JAX outputs differ by {diff}")
  first = {name: bench_steps._timed(fn) for name, fn in runs.items()}  # warm-up
  budget = bench_steps._BUDGET.value  # pylint: disable=protected-access
  repeats = int(np.clip(round(budget / max(sum(first.values()), 1e-3)), 3, 50))
  times = {name: [] for name in runs}
  for _ in range(repeats):
    for name, fn in runs.items():
      time.sleep(0.02)
      times[name].append(bench_steps._timed(fn))
  out = {"kind": kind, "cin": cin, "cout": cout, "size": size, "batch": batch, "flops": flops,
         "repeats": repeats, **{f"{name}_s": float(np.median(t)) for name, t in times.items()}}
  out["jax_s"] = min(out["jax_cpu_s"], out["jax_lax_s"])
  if "torch_s" in out:
    out["ratio"] = out["jax_s"] / out["torch_s"]
  return out


def markdown(results: dict) -> str:
  m = results["machine"]
  lines = [
      "# Forward + backward per layer: ours (JAX) vs PyTorch",
      "",
      f"Machine: {m['cpu']}, {m['cores']} cores; jax {m['jax']}, torch {m['torch']} "
      f"({m['torch_threads']} threads); matmul peak {results['peak_flops_per_s'] / 1e9:.0f} GFLOP/s "
      f"(best of XLA / numpy / torch). `python experiments/bench_layers.py "
      f"--budget_s={bench_steps._BUDGET.value:g} --out=...`, "  # pylint: disable=protected-access
      f"{results['wall_s'] / 60:.1f} min.",
      "",
      "Each stage: jitted forward + backward (parameter and input gradients) in our two conv "
      "formulations (`cpu`: im2col / phase convs; `lax`: XLA's convolutions), and PyTorch's with the "
      "same parameters; median seconds. Ours = the faster formulation. Per generator = the stage's "
      "ms times how often the CycleGAN ResNet generator (9 blocks) has it.",
      "",
  ]
  for batch, rows in results["stages"].items():
    lines += [f"## {results['resolution']} px, batch {batch}", "",
              "| stage | input | GFLOP | ours cpu ms | ours lax ms | PyTorch ms | ours / PyTorch | "
              "ours GFLOP/s | PyTorch GFLOP/s | per generator: ours / PyTorch ms |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    tot_j = tot_t = 0.0
    for name, r in rows.items():
      count = r["count"]
      torch_ms = r.get("torch_s", float("nan")) * 1e3
      tot_j += count * r["jax_s"] * 1e3
      tot_t += count * torch_ms
      lines.append(
          f"| {name} | {r['size']}x{r['size']}x{r['cin']} | {r['flops'] / 1e9:.2f} | "
          f"{r['jax_cpu_s'] * 1e3:.1f} | {r['jax_lax_s'] * 1e3:.1f} | {torch_ms:.1f} | "
          f"**{r.get('ratio', float('nan')):.2f}** | {r['flops'] / r['jax_s'] / 1e9:.0f} | "
          f"{r['flops'] / (torch_ms / 1e3) / 1e9:.0f} | "
          + (f"{count * r['jax_s'] * 1e3:.0f} / {count * torch_ms:.0f} |" if count else "- |"))
    lines += ["", f"Generator forward + backward from its stages: ours {tot_j:.0f} ms, PyTorch "
                  f"{tot_t:.0f} ms (ratio {tot_j / tot_t:.2f}).", ""]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  start = time.perf_counter()
  f, res = _WIDTH.value, _RES.value
  with_torch = torch is not None and bench_steps._TORCH.value  # pylint: disable=protected-access
  results = {"machine": bench_steps.machine(), "resolution": res, "features": f, "stages": {}}
  peaks = bench_steps.matmul_peaks(sizes=(2048,))
  for batch in map(int, _BATCHES.value):
    rows = {}
    for name, (kind, cin, cout, frac, count) in stages(f).items():
      rows[name] = {**bench_stage(kind, cin, cout, res // frac, batch, with_torch), "count": count}
      print(f"batch {batch} {name}: " + ", ".join(f"{k}={v:.4f}" for k, v in rows[name].items()
                                                  if k.endswith("_s") or k == "ratio"), flush=True)
    results["stages"][str(batch)] = rows
  peaks_end = bench_steps.matmul_peaks(sizes=(2048,))
  results["peak_flops_per_s"] = max(*peaks.values(), *peaks_end.values())
  results["matmul_peaks"] = {"start": peaks, "end": peaks_end}
  results["wall_s"] = time.perf_counter() - start
  os.makedirs(bench_steps._OUT.value, exist_ok=True)
  with open(os.path.join(bench_steps._OUT.value, "results.json"), "w") as fh:
    json.dump(results, fh, indent=2)
  with open(os.path.join(bench_steps._OUT.value, "results.md"), "w") as fh:
    fh.write(markdown(results))
  print(f"wrote {bench_steps._OUT.value}")


if __name__ == "__main__":
  app.run(main)
