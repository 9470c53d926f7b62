"""The training engine shared by every method: checks, mesh, data, state, jitted steps, loop.

``train_and_evaluate(config, workdir)`` runs ``config.method`` on ``config.data``:

1. Before anything compiles, it checks the method's ``Spec`` (domains, pairing, batch fields,
   phases), the data and the evaluators of ``config.evals`` against each other; a mismatch is a
   ``ConfigError`` naming both sides.
2. One jitted step per phase over a ``('data',)`` mesh of all devices (batch sharded, state
   replicated and donated), the same code on one CPU and on a pod. A method without phases
   trains for ``config.num_steps`` steps; one with phases runs them in order, each starting with
   ``start_phase`` (its optimizer, networks it adds). Steps count across phases.
3. It resumes from the newest checkpoint in ``workdir`` (state and input-pipeline position, in
   any phase), or starts from another run's newest checkpoint (``config.init_from``); saves on
   SIGINT/SIGTERM before exiting; stops on a non-finite loss without overwriting the last good
   checkpoint; and writes the workdir contract (config.json, metrics.jsonl, checkpoints/,
   samples/, eval_final.json, TensorBoard events). Samples and evaluations run in the last phase
   (the maps the evaluators call exist there), at ``eval_every`` and at the end.
4. Reliability (``disen_jax/workdir.py``, ``checkpoint.py``): one run per workdir (an OS file
   lock); a rerun's config compared with the workdir's ``config.json`` before anything compiles;
   a checkpoint that does not restore moved aside to ``<step>.corrupt`` and the run resumed from
   the newest that does; a failed save reported in words. Whatever way the run ends, the input
   pipeline's threads and then the checkpointer are closed.

Many hosts: ``initialize_distributed`` (``--multihost``) joins the processes; each process's
grain pipeline decodes only its ``batch_size / process_count`` examples of every global batch,
``jax.make_array_from_process_local_data`` assembles the global batch, every process takes part
in checkpoint saves, and only process 0 writes logs, samples and ``eval_final.json``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import signal
import threading
from typing import Callable

import grain
import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from disen_jax import checkpoint as ckptlib
from disen_jax import config_lib
from disen_jax import data as datalib
from disen_jax import evaluation
from disen_jax import logging as loglib
from disen_jax import methods
from disen_jax import nn as nnlib
from disen_jax import workdir as workdirlib
from disen_jax.data import pipeline
from disen_jax.errors import ConfigError, DataError, Error
from disen_jax.methods import common

LABELLED_FILE = "labelled_examples.json"


class NonFiniteLossError(Error):
  """A loss became NaN or Inf; the last good checkpoint is kept."""


class Interrupted(Exception):
  """Raised after the state was saved because of SIGINT/SIGTERM (or ``interrupt_at_step``)."""


def compiler_options() -> dict:
  """XLA options for jitting a train step on this backend, for the jax versions they were
  measured with (other versions get XLA's defaults). On CPU, jax 0.10:

  * XLA's default scheduler orders the step for running independent ops concurrently and so
    cannot reuse their buffers: the memory-optimized one needs 2-2.5x less memory (e.g. 7.5
    instead of 19.6 GB for a CycleGAN step at 256 px, batch 4) at the same or better speed on 2
    cores.
  * Which ops XLA:CPU hands to YNNPACK (``xla_cpu_experimental_ynn_fusion_type``): dots and
    reductions, not convolutions. jax 0.10's default hands it all three; there a 3x3
    convolution at 256 channels runs at ~40 GFLOP/s, in XLA's own kernel at ~140. Reductions
    must stay: XLA's own reduce over non-minor axes (instance and batch norms, bias gradients)
    is not vectorized, 1.4 ms to sum a 4x32x32x256 array that YNNPACK sums in 0.14.
    Elementwise ops too: 2.5x slower."""
  if jax.default_backend() != "cpu" or jax.__version_info__[:2] != (0, 10):
    return {}
  return {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
          "xla_cpu_experimental_ynn_fusion_type":
              "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def prepare_workdir(workdir: str) -> str:
  """``workdir`` (made absolute if local), created with its parents when missing (local paths,
  and ``gs://`` ones through etils' epath)."""
  if not workdir:
    raise ConfigError("--workdir is required")
  local = "://" not in workdir
  path = epath.Path(os.path.abspath(workdir) if local else workdir)
  if path.exists() and not path.is_dir():
    raise ConfigError(f"--workdir={path} exists and is not a directory")
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"--workdir={path} cannot be created: {e}") from e
  return str(path)


def initialize_distributed(*, coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins a multi-process run with ``jax.distributed.initialize``; with no arguments JAX detects
  the cluster (Cloud TPU, Slurm, Open MPI, ...). CPU processes exchange data through gloo."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)


# ----------------------------------------------------------------------------- checks


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The phases a run goes through, and the global step each starts at."""
  phases: tuple[methods.Phase, ...]
  starts: tuple[int, ...]
  phased: bool  # the method declared its phases (else one phase of config.num_steps)

  @property
  def total(self) -> int:
    return self.starts[-1] + self.phases[-1].steps

  def index(self, step: int) -> int:
    """The phase the state is in after ``step`` steps (its last step's phase; 0 at the start)."""
    return max([k for k, s in enumerate(self.starts) if s < step], default=0)

  def end(self, k: int) -> int:
    return self.starts[k] + self.phases[k].steps


def schedule(spec: methods.Spec, config) -> Schedule:
  if not spec.phases:
    if not isinstance(config.num_steps, int) or config.num_steps <= 0:
      raise ConfigError(f"config.num_steps={config.num_steps!r} must be a positive int")
    return Schedule((methods.Phase("train", config.num_steps),), (0,), False)
  starts = tuple(int(s) for s in np.cumsum([0] + [p.steps for p in spec.phases[:-1]]))
  sched = Schedule(tuple(spec.phases), starts, True)
  steps = ", ".join(f"{p.name} {p.steps}" for p in spec.phases)
  if config.num_steps not in (0, sched.total):
    raise ConfigError(f"config.num_steps={config.num_steps}, but the phases of config.method="
                      f"{config.method!r} take {sched.total} steps ({steps}): set num_steps to 0 "
                      "(the sum) or change the phases' steps")
  if sched.total <= 0:
    raise ConfigError(f"the phases of config.method={config.method!r} take no steps ({steps})")
  return sched


def declared_ranges(config) -> list[dict]:
  """The valid ranges that the evaluators, the data source and the method declare beyond
  ``config_lib.RANGES`` (their modules' ``RANGES``; the method's win)."""
  evaluators = [getattr(evaluation.get(name), "RANGES", {}) for name in evaluation.names()]
  return [*evaluators, datalib.source_ranges(config.data.source),
          getattr(methods.get(config.method), "RANGES", {})]


def check_config(config, num_devices: int) -> None:
  """The engine's own fields and every numeric field's range; errors naming the field at fault."""
  config_lib.check_ranges(config, *declared_ranges(config))
  if config.batch_size <= 0 or config.batch_size % num_devices:
    raise ConfigError(f"config.batch_size={config.batch_size} must be a positive multiple of the "
                      f"{num_devices} devices")
  for field in ("log_every", "eval_every", "checkpoint_every", "num_samples"):
    if not isinstance(config[field], int) or config[field] <= 0:
      raise ConfigError(f"config.{field}={config[field]!r} must be a positive int")
  if "model" in config and "conv_impl" in config.model:
    nnlib.convs.resolve_impl(config.model.conv_impl)


def check_data(config, spec: methods.Spec, train_ds: datalib.Dataset) -> None:
  """The training split against the method's domains, pairing and channels."""
  missing = [d for d in spec.domains if d not in train_ds.domains]
  if missing:
    raise ConfigError(f"config.method={config.method!r} needs domains {list(spec.domains)}; "
                      f"config.data.source={config.data.source!r} gives {sorted(train_ds.domains)}"
                      " (config.data.domains can rename them)")
  if spec.paired and not train_ds.paired:
    raise ConfigError(f"config.method={config.method!r} needs paired domains (example i of each "
                      f"showing the same thing); config.data.source={config.data.source!r} gives "
                      "unpaired ones (image folders pair by file name with config.data.paired=True)")
  for d in spec.domains:
    field = f"{d}_channels"
    if "model" in config and field in config.model and train_ds.domains[d].shape[-1] != config.model[field]:
      raise ConfigError(f"config.model.{field}={config.model[field]} but the data's domain {d!r} "
                        f"has {train_ds.domains[d].shape[-1]} channels")


def batch_fields(config, spec: methods.Spec, train_ds: datalib.Dataset):
  """The extra batch fields the method asks for (``methods.FIELDS``). Returns ``(fields, stream,
  labelled, info)``: ``fields[d]`` arrays aligned with domain ``d`` (``pipeline.examples``),
  ``stream`` the indices of the labelled-examples stream per domain (None unless asked for),
  ``labelled`` the indices whose labels ``config.data.num_labels`` keeps (None: all) and ``info``
  the ``methods.DataInfo``."""
  wants_labels = {"label", "labelled", "labelled_examples"} & set(spec.fields)
  num_labels = config.data.num_labels
  if num_labels and not {"labelled", "labelled_examples"} & set(spec.fields):
    raise ConfigError(f"config.data.num_labels={num_labels}, but config.method={config.method!r} "
                      f"{'needs every label' if wants_labels else 'uses no labels'}: set it to 0")
  fields, labelled, classes = {}, {}, {}
  for d in spec.domains:
    n = len(train_ds.domains[d])
    fields[d] = {f"{d}/index": np.arange(n, dtype=np.int32)} if "index" in spec.fields else {}
    if not wants_labels:
      continue
    labels = train_ds.extras.get(f"{d}/label")
    if labels is None:
      raise ConfigError(f"config.method={config.method!r} needs the class of every example of "
                        f"domain {d!r}; config.data.source={config.data.source!r} gives none: set "
                        f"config.data.label to the source's field that holds it")
    classes[d] = int(np.max(labels)) + 1
    known = np.ones(n, bool)
    if num_labels:
      known[:] = False
      labelled[d] = datalib.labelled_subset(labels, num_labels, config.data.labels_seed,
                                            what=f"domain {d!r} of config.data.source={config.data.source!r}")
      known[labelled[d]] = True
    fields[d][f"{d}/label"] = np.where(known, labels, -1).astype(np.int32)
    if "labelled" in spec.fields:
      fields[d][f"{d}/labelled"] = known
  stream = ({d: labelled.get(d, np.arange(len(train_ds.domains[d]))) for d in spec.domains}
            if "labelled_examples" in spec.fields else None)
  info = methods.DataInfo({d: len(train_ds.domains[d]) for d in spec.domains}, classes)
  return fields, stream, labelled or None, info


# ----------------------------------------------------------------------------- setup


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


@dataclasses.dataclass
class Training:
  """What a training loop needs: the method, its schedule, its initial state (phase 0 entered),
  the jitted steps and phase starts, and the batches."""
  method: object
  spec: methods.Spec
  schedule: Schedule
  config: object
  state: object
  batches: object          # grain.MapDataset of this process's local batches
  batch_sharding: object
  labelled: dict | None    # domain -> indices of the examples whose labels are kept
  _steps: dict = dataclasses.field(default_factory=dict)

  @property
  def replicated(self):
    return NamedSharding(self.batch_sharding.mesh, P())

  def global_batch(self, local: dict) -> dict:
    return to_global(local, self.batch_sharding)

  @functools.cached_property
  def _start(self) -> Callable:
    start = getattr(self.method, "start_phase", common.start_phase)
    return jax.jit(lambda state, k: start(state, self.schedule.phases[k], config=self.config),
                   static_argnums=1, out_shardings=self.replicated)

  def start(self, state, k: int):
    """``state`` entering phase ``k`` (phases without ``start_phase`` get ``common.start_phase``)."""
    return self._start(state, k) if self.schedule.phased else state

  def abstract(self, k: int):
    """Shapes, dtypes and shardings of the state in phase ``k`` (to restore a checkpoint into)."""
    def enter(state):
      for j in range(1, k + 1):
        state = self.start(state, j)
      return state
    shapes = jax.eval_shape(enter, self.state)
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.replicated), shapes)

  def step_fn(self, k: int) -> Callable:
    """The jitted step of phase ``k``: ``(state, global batch) -> (state, metrics)``."""
    if k not in self._steps:
      kwargs = {"phase": self.schedule.phases[k]} if self.schedule.phased else {}
      self._steps[k] = jax.jit(
          functools.partial(self.method.train_step, config=self.config, **kwargs),
          in_shardings=(self.replicated, self.batch_sharding), out_shardings=self.replicated,
          donate_argnums=0, compiler_options=compiler_options())
    return self._steps[k]


def setup_training(config, train_ds: datalib.Dataset | None = None,
                   test_ds: datalib.Dataset | None = None) -> Training:
  """Checks ``config`` against its method, data (and, given ``test_ds``, evaluators), then builds
  the mesh, the input pipeline and the initial state (phase 0 entered)."""
  method = methods.get(config.method)
  spec = methods.spec(method, config)
  sched = schedule(spec, config)
  check_config(config, jax.device_count())
  if train_ds is None:
    train_ds = datalib.build(config.data, "train")
  check_data(config, spec, train_ds)
  if test_ds is not None:
    evaluation.check(config, spec, methods.offered_maps(method, config, spec.domains), test_ds)
  fields, stream, labelled, info = batch_fields(config, spec, train_ds)
  mesh = make_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  batches = datalib.local_batches(
      train_ds.select(spec.domains), batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      augment=pipeline.augmentation(config.data, paired=train_ds.paired), fields=fields,
      labelled=stream)
  init_fn = jax.jit(functools.partial(method.init, config=config, info=info), out_shardings=replicated)
  state = init_fn(jax.random.PRNGKey(config.seed), batch=to_global(batches[0], batch_sharding))
  training = Training(method, spec, sched, config, state, batches, batch_sharding, labelled)
  training.state = training.start(state, 0)
  return training


# ----------------------------------------------------------------------------- the loop


def write_samples(method, state, config, test_ds, workdir: str, step: int) -> None:
  n = min(config.num_samples, *test_ds.sizes().values())
  batch = {k: v[:n] for k, v in test_ds.domains.items()}
  rows = {k: np.asarray(v) for k, v in method.sample(state, batch, config=config).items()}  # keep order
  loglib.save_grid(os.path.join(workdir, "samples", f"translations_{step:08d}.png"), rows)


def _evaluate(training: Training, state, test_ds, workdir: str, step: int) -> dict:
  write_samples(training.method, state, training.config, test_ds, workdir, step)
  maps = methods.maps(training.method, state, training.config)
  return evaluation.evaluate(maps, training.config, test_ds, workdir, step)


def _init_from(config, training: Training):
  """The newest state of the run in ``config.init_from``, restored into this config's structure
  at its step; returns ``(state, phase index)``."""
  other = os.path.abspath(config.init_from)
  path = os.path.join(other, "config.json")
  if not os.path.isfile(path):
    raise ConfigError(f"config.init_from={config.init_from!r}: no config.json there (is it a "
                      "training run's workdir?)")
  with open(path) as f:
    other_method = json.load(f).get("method")
  if other_method != config.method:
    raise ConfigError(f"config.init_from={config.init_from!r} is a run of method {other_method!r}, "
                      f"not config.method={config.method!r}")
  if not os.path.isdir(os.path.join(other, "checkpoints")):
    raise ConfigError(f"config.init_from={config.init_from!r} has no checkpoints/")
  source = ckptlib.Checkpointer(other)
  try:
    step = source.latest_step()
    if step is None:
      raise ConfigError(f"config.init_from={config.init_from!r} has no checkpoint")
    if step >= training.schedule.total:
      raise ConfigError(f"config.init_from={config.init_from!r} ends at step {step}; this config's "
                        f"{'phases end' if training.schedule.phased else 'num_steps ends'} at step "
                        f"{training.schedule.total}: nothing is left to train")
    k = training.schedule.index(step)
    try:
      return source.restore(training.abstract(k), step=step), k
    except (ValueError, KeyError, TypeError) as e:
      raise ConfigError(f"config.init_from={config.init_from!r}: its checkpoint at step {step} does "
                        f"not fit this config (phase {training.schedule.phases[k].name!r}): {e}") from e
  finally:
    source.close()


def train_and_evaluate(config, workdir: str, *, interrupt_at_step: int | None = None,
                       datasets: tuple[datalib.Dataset, datalib.Dataset] | None = None):
  """Trains (or resumes) and evaluates; returns ``(final_state, eval_metrics)``. ``datasets``:
  the ``(train, test)`` splits of ``config.data`` if the caller has built them already."""
  workdir = prepare_workdir(workdir)
  method = methods.get(config.method)
  spec = methods.spec(method, config)  # before any data is read
  schedule(spec, config)
  check_config(config, jax.device_count())
  with contextlib.ExitStack() as stack:  # closed in reverse: input pipeline, writer, checkpointer, lock
    stack.enter_context(workdirlib.Lock(workdir))
    diff = workdirlib.check_config(workdir, config, strict=ckptlib.has_checkpoints(workdir),
                                   extra_safe=getattr(method, "RESUME_SAFE", ()))
    return _train_and_evaluate(config, workdir, spec, diff, stack,
                               interrupt_at_step=interrupt_at_step, datasets=datasets)


def _train_and_evaluate(config, workdir: str, spec, diff: dict, stack: contextlib.ExitStack,
                        *, interrupt_at_step, datasets):
  train_ds, test_ds = datasets or (datalib.build(config.data, "train"),
                                   datalib.build(config.data, "test"))
  test_ds = test_ds.select(spec.domains)
  training = setup_training(config, train_ds, test_ds)
  sched = training.schedule
  if not config.evals:
    print("note: config.evals is empty: this run is not evaluated", flush=True)

  # After the checks (it creates checkpoints/); every phase's end is kept beside the newest.
  ckpt = ckptlib.Checkpointer(workdir, keep_steps=tuple(sched.end(k) for k in range(len(sched.phases))))
  stack.callback(ckpt.close)
  data_iter = datalib.iterator(training.batches, config.data)
  stack.callback(data_iter.close)  # its prefetch threads
  state, entered = training.state, 0
  restored = ckpt.restore_newest(lambda step: training.abstract(sched.index(step)), data_iter)
  if restored is not None:
    step, (state, restored_iter) = restored
    if restored_iter is not data_iter:
      data_iter = restored_iter
      stack.callback(data_iter.close)
    entered = sched.index(step)
    print(f"Resumed from {ckpt.directory} at step {int(state.step)}", flush=True)
  elif config.init_from:
    state, entered = _init_from(config, training)
    grain.experimental.set_next_index(data_iter, int(state.step))
    print(f"Started from {config.init_from} at step {int(state.step)}", flush=True)
  start = int(state.step)
  position = grain.experimental.get_next_index(data_iter)
  if position != start:
    raise DataError(f"the checkpoint in {ckpt.directory} is at step {start} but its input pipeline "
                    f"at batch {position}; it was not written by this engine")
  workdirlib.record_start(workdir, config, step=start, diff=diff)  # the run starts from this config
  if loglib.is_writer() and training.labelled is not None:
    loglib.write_text(os.path.join(workdir, LABELLED_FILE), json.dumps(
        {"num_labels": config.data.num_labels, "labels_seed": config.data.labels_seed,
         "indices": {d: idx.tolist() for d, idx in training.labelled.items()}}))

  writer = loglib.MetricWriter(workdir)
  stack.callback(writer.close)
  progress = loglib.Progress(sched.total, start)
  last = len(sched.phases) - 1
  with _Signals() as signals:
    step = start
    for k, phase in enumerate(sched.phases):
      if step >= sched.end(k):
        continue
      while entered < k:
        entered += 1
        state = training.start(state, entered)
      progress.phase = phase.name if sched.phased else None
      state, step = _train_phase(training, k, state, step, data_iter, ckpt, signals, writer, progress,
                                 test_ds=test_ds if k == last else None, workdir=workdir,
                                 interrupt_at_step=interrupt_at_step)
  if ckpt.latest_step() != sched.total:
    ckpt.save(sched.total, state, data_iter)
  if entered < last:
    print(f"note: the run ends before its last phase ({sched.phases[last].name!r}, 0 steps): "
          "no samples or evaluation", flush=True)
    return state, {}
  final = _evaluate(training, state, test_ds, workdir, sched.total)
  writer.write(sched.total, "eval", final)
  if loglib.is_writer():
    loglib.write_text(os.path.join(workdir, "eval_final.json"),
                      json.dumps({k: float(v) for k, v in final.items()}, indent=2, sort_keys=True))
  return state, final


def _train_phase(training: Training, k: int, state, step: int, data_iter, ckpt, signals, writer,
                 progress, *, test_ds, workdir: str, interrupt_at_step: int | None):
  """Steps ``step .. end of phase k``; returns ``(state, step)``. Evaluates when ``test_ds`` is
  given (the last phase)."""
  config, total, end = training.config, training.schedule.total, training.schedule.end(k)
  step_fn = training.step_fn(k)
  pending = None  # (step, device metrics) of the previous step, checked one step late
  for step in range(step, end):
    state, metrics = step_fn(state, training.global_batch(next(data_iter)))
    if pending is not None:  # fetch the previous step's metrics while this one runs
      _finish_step(*pending, writer=writer, progress=progress, config=config, total=total)
    pending = (step + 1, metrics)
    done = step + 1
    save_now = done % config.checkpoint_every == 0 or done == end
    stop = signals.reached(done) or (interrupt_at_step is not None and done >= interrupt_at_step)
    if save_now or stop:
      _finish_step(*pending, writer=writer, progress=progress, config=config, total=total)
      pending = None
      ckpt.save(done, state, data_iter)
    if test_ds is not None and done % config.eval_every == 0 and done != total:
      writer.write(done, "eval", _evaluate(training, state, test_ds, workdir, done))
    if stop:
      raise Interrupted(f"interrupted ({signals.received or 'interrupt_at_step'}) at step {done}; "
                        f"checkpoint saved in {ckpt.directory}: rerun the same command to resume")
  if pending is not None:
    _finish_step(*pending, writer=writer, progress=progress, config=config, total=total)
  return state, end


def _finish_step(step: int, metrics, *, writer, progress, config, total: int) -> None:
  """Host side of a finished step: the finiteness check, and logging at the interval."""
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  bad = sorted(k for k, v in values.items() if not np.isfinite(v))
  if bad:
    raise NonFiniteLossError(
        f"non-finite value of {', '.join(bad)} at step {step}; stopping. The last good checkpoint "
        "is kept; lower the learning rate or check the data, then rerun to resume from it.")
  if step % config.log_every == 0 or step == total:
    writer.write(step, "train", values)
    progress.update(step, {k: v for k, v in values.items() if k != "lr"})
