"""The training engine shared by every method: mesh, data, state, jitted step, loop.

``train_and_evaluate(config, workdir)`` runs ``config.method`` on ``config.data`` for
``config.num_steps`` steps with one jitted step over a ``('data',)`` mesh of all devices (batch
sharded, state replicated and donated), the same code on one CPU and on a pod. It resumes from
the newest checkpoint in ``workdir`` (training state and input-pipeline position), saves on
SIGINT/SIGTERM before exiting, stops on a non-finite loss without overwriting the last good
checkpoint, and writes the workdir contract (config.json, metrics.jsonl, checkpoints/, samples/,
eval_final.json, TensorBoard events).

Many hosts: ``initialize_distributed`` (``--multihost``) joins the processes; each process's
grain pipeline decodes only its ``batch_size / process_count`` examples of every global batch,
``jax.make_array_from_process_local_data`` assembles the global batch, every process takes part
in checkpoint saves, and only process 0 writes logs, samples and ``eval_final.json``.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import threading

import grain
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from disen_jax import checkpoint as ckptlib
from disen_jax import data as datalib
from disen_jax import evaluation
from disen_jax import logging as loglib
from disen_jax import methods
from disen_jax.data import pipeline
from disen_jax.methods import common


class NonFiniteLossError(RuntimeError):
  pass


class Interrupted(Exception):
  """Raised after the state was saved because of SIGINT/SIGTERM (or ``interrupt_at_step``)."""


def check_workdir(workdir: str) -> str:
  if not workdir:
    raise ValueError("--workdir is required")
  workdir = os.path.abspath(workdir)
  parent = os.path.dirname(workdir)
  if not os.path.isdir(parent):
    raise FileNotFoundError(f"--workdir={workdir}: its parent directory {parent} does not exist")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir={workdir} exists and is not a directory")
  return workdir


def initialize_distributed(*, coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins a multi-process run with ``jax.distributed.initialize``; with no arguments JAX detects
  the cluster (Cloud TPU, Slurm, Open MPI, ...). CPU processes exchange data through gloo."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)


def check_config(config, method, train_ds: datalib.Dataset, num_devices: int) -> None:
  """Errors naming the config field at fault, before anything is compiled."""
  if config.batch_size <= 0 or config.batch_size % num_devices:
    raise ValueError(f"config.batch_size={config.batch_size} must be a positive multiple of the "
                     f"{num_devices} devices")
  if config.num_steps <= 0:
    raise ValueError(f"config.num_steps={config.num_steps} must be positive")
  missing = [d for d in method.DOMAINS if d not in train_ds.domains]
  if missing:
    raise ValueError(f"config.method={config.method!r} needs domains {list(method.DOMAINS)}; "
                     f"config.data.source={config.data.source!r} gives {sorted(train_ds.domains)}")
  for d in method.DOMAINS:
    field = f"{d}_channels"
    if field in config.model and train_ds.domains[d].shape[-1] != config.model[field]:
      raise ValueError(f"config.model.{field}={config.model[field]} but the data's domain {d!r} has "
                       f"{train_ds.domains[d].shape[-1]} channels")


def _check_finite(metrics: dict, step: int) -> None:
  bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
  if bad:
    raise NonFiniteLossError(
        f"non-finite value of {', '.join(bad)} at step {step}; stopping. The last good checkpoint "
        "is kept; lower the learning rate or check the data, then rerun to resume from it.")


class _Signals:
  """Turns SIGINT/SIGTERM into a flag the loop checks after each step (main thread only).

  With several processes a local flag would stop one process while the others wait in a
  collective, so there the handlers stay unset and SIGTERM (a scheduler's or Cloud TPU's
  preemption notice) goes to JAX's preemption service: every process stops at the same step
  (``reached``), the first one that all of them reach after any of them got the signal.
  """

  def __init__(self):
    self.received = None
    self._old = {}
    self._multiprocess = jax.process_count() > 1

  def __enter__(self):
    if not self._multiprocess and threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.received = signal.Signals(signum).name

  def reached(self, step: int) -> str | None:
    """The reason to stop after ``step`` (every process gets the same answer), or None."""
    if self._multiprocess and multihost_utils.reached_preemption_sync_point(step):
      self.received = "preemption notice (SIGTERM) to a process"
    return self.received

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def make_mesh():
  """A 1-D ``('data',)`` mesh over every device of every process (automatic sharding mode)."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def to_global(local: dict, sharding) -> dict:
  """This process's part of a batch -> the global batch, sharded over the mesh."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def input_pipeline(config, train_ds: datalib.Dataset):
  """Element ``t``: this process's part of global batch ``t`` (``data/pipeline.py``)."""
  return datalib.local_batches(train_ds, batch_size=config.batch_size, seed=config.seed,
                               process_index=jax.process_index(), process_count=jax.process_count(),
                               augment=pipeline.augmentation(config.data, paired=train_ds.paired))


@dataclasses.dataclass
class Training:
  """What a training loop needs: the method, its initial state, the jitted step and the batches."""
  method: object
  state: object
  step_fn: object          # (state, global batch) -> (state, metrics); donates the state
  batches: object          # grain.MapDataset of this process's local batches
  batch_sharding: object

  def global_batch(self, local: dict) -> dict:
    return to_global(local, self.batch_sharding)


def setup_training(config, train_ds: datalib.Dataset | None = None) -> Training:
  """Builds the mesh, the input pipeline, the initial state and the jitted step for ``config``."""
  method = methods.get(config.method)
  if train_ds is None:
    train_ds = datalib.build(config.data, "train")
  check_config(config, method, train_ds, jax.device_count())
  mesh = make_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  batches = input_pipeline(config, train_ds.select(method.DOMAINS))
  init_fn = jax.jit(functools.partial(method.init, config=config), out_shardings=replicated)
  state = init_fn(jax.random.PRNGKey(config.seed), batch=to_global(batches[0], batch_sharding))
  step_fn = jax.jit(functools.partial(method.train_step, config=config),
                    in_shardings=(replicated, batch_sharding), out_shardings=replicated,
                    donate_argnums=0, compiler_options=common.compiler_options())
  return Training(method, state, step_fn, batches, batch_sharding)


def write_samples(method, state, config, test_ds, workdir: str, step: int) -> None:
  n = min(config.num_samples, *test_ds.sizes().values())
  batch = {k: v[:n] for k, v in test_ds.domains.items()}
  rows = {k: np.asarray(v) for k, v in method.sample(state, batch, config=config).items()}  # keep order
  loglib.save_grid(os.path.join(workdir, "samples", f"translations_{step:08d}.png"), rows)


def train_and_evaluate(config, workdir: str, *, interrupt_at_step: int | None = None,
                       datasets: tuple[datalib.Dataset, datalib.Dataset] | None = None):
  """Trains (or resumes) and evaluates; returns ``(final_state, eval_metrics)``. ``datasets``:
  the ``(train, test)`` splits of ``config.data`` if the caller has built them already."""
  workdir = check_workdir(workdir)
  methods.get(config.method)  # an unknown method is an error before any data is read
  train_ds, test_ds = datasets or (datalib.build(config.data, "train"),
                                   datalib.build(config.data, "test"))
  training = setup_training(config, train_ds)
  method, state, step_fn = training.method, training.state, training.step_fn

  if loglib.is_writer():
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))

  data_iter = datalib.iterator(training.batches, config.data)
  ckpt = ckptlib.Checkpointer(workdir)
  if ckpt.latest_step() is not None:
    state, data_iter = ckpt.restore(state, data_iter)
    print(f"Resumed from {ckpt.directory} at step {int(state.step)}", flush=True)
  start = int(state.step)
  position = grain.experimental.get_next_index(data_iter)
  if position != start:
    raise ValueError(f"the checkpoint in {ckpt.directory} is at step {start} but its input pipeline "
                     f"at batch {position}; it was not written by this engine")

  writer = loglib.MetricWriter(workdir)
  progress = loglib.Progress(config.num_steps, start)
  pending = None  # (step, device metrics) of the previous step, checked one step late
  try:
    with _Signals() as signals:
      for step in range(start, config.num_steps):
        state, metrics = step_fn(state, training.global_batch(next(data_iter)))
        if pending is not None:  # fetch the previous step's metrics while this one runs
          _finish_step(*pending, writer=writer, progress=progress, config=config)
        pending = (step + 1, metrics)
        done = step + 1
        save_now = done % config.checkpoint_every == 0 or done == config.num_steps
        stop = signals.reached(done) or (interrupt_at_step is not None and done >= interrupt_at_step)
        if save_now or stop:
          _finish_step(*pending, writer=writer, progress=progress, config=config)
          pending = None
          ckpt.save(done, state, data_iter)
        if done % config.eval_every == 0 and done != config.num_steps:
          write_samples(method, state, config, test_ds, workdir, done)
          writer.write(done, "eval", evaluation.evaluate(method, state, config, test_ds, workdir, done))
        if stop:
          raise Interrupted(f"interrupted ({signals.received or 'interrupt_at_step'}) at step {done}; "
                            f"checkpoint saved in {ckpt.directory}: rerun the same command to resume")
      if pending is not None:
        _finish_step(*pending, writer=writer, progress=progress, config=config)
    if ckpt.latest_step() != config.num_steps:
      ckpt.save(config.num_steps, state, data_iter)
    write_samples(method, state, config, test_ds, workdir, config.num_steps)
    final = evaluation.evaluate(method, state, config, test_ds, workdir, config.num_steps)
    writer.write(config.num_steps, "eval", final)
    if loglib.is_writer():
      with open(os.path.join(workdir, "eval_final.json"), "w") as f:
        json.dump({k: float(v) for k, v in final.items()}, f, indent=2, sort_keys=True)
    return state, final
  finally:
    writer.close()
    ckpt.close()


def _finish_step(step: int, metrics, *, writer, progress, config) -> None:
  """Host side of a finished step: the finiteness check, and logging at the interval."""
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  _check_finite(values, step)
  if step % config.log_every == 0 or step == config.num_steps:
    writer.write(step, "train", values)
    progress.update(step, {k: v for k, v in values.items() if k != "lr"})
