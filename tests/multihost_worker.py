"""A training run in a fresh process, for test_multihost.py: ``--devices`` simulated CPU devices and,
with ``--num_processes > 1``, one process of a multi-process run (gloo collectives).

  python tests/multihost_worker.py --config=uncoop_synthetic --devices=2 --workdir=W --out=O.npz \
      [--steps=N] [--losses] [--num_processes=2 --process_id=i --coordinator_address=host:port]

Default: ``train.train_and_evaluate`` into ``--workdir``, then this process's copy of the final
params saved to ``--out`` (npz of the leaves in tree order). ``--losses``: only the engine's
setup and ``--steps`` train steps, the metrics of each step saved to ``--out`` (json).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", required=True)
  parser.add_argument("--devices", type=int, required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--workdir")
  parser.add_argument("--steps", type=int)
  parser.add_argument("--losses", action="store_true")
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--coordinator_address")
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
  os.environ["JAX_PLATFORMS"] = "cpu"
  sys.path.insert(0, ROOT)
  from disen_jax import train  # pylint: disable=g-import-not-at-top
  if args.num_processes > 1:
    train.initialize_distributed(coordinator_address=args.coordinator_address,
                                 num_processes=args.num_processes, process_id=args.process_id)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  assert jax.local_device_count() == args.devices and jax.process_count() == args.num_processes
  config = config_for(args.config, args.steps)
  if args.losses:
    with open(args.out, "w") as f:
      json.dump(train_losses(train, config, args.steps), f)
    return
  state, _ = train.train_and_evaluate(config, args.workdir)
  np.savez(args.out, *jax.tree_util.tree_leaves(jax.device_get(state.params)))


def config_for(name: str, steps: int | None):
  """``configs/<name>.py:test``, ``steps`` long, saving every 2 steps, evaluating only at the end."""
  from tests.conftest import load_config  # pylint: disable=g-import-not-at-top
  config = load_config(name, "test")
  if steps:
    config.num_steps = steps
  config.checkpoint_every = 2
  config.eval_every = config.num_steps + 1
  return config


def train_losses(train, config, steps: int) -> list[dict]:
  """The metrics of the first ``steps`` train steps of the engine's setup (no checkpoints, no eval)."""
  import jax  # pylint: disable=g-import-not-at-top
  training = train.setup_training(config)
  state, out = training.state, []
  for t in range(steps):
    state, metrics = training.step_fn(0)(state, training.global_batch(training.batches[t]))
    out.append({k: float(v) for k, v in jax.device_get(metrics).items()})
  return out


if __name__ == "__main__":
  main()
