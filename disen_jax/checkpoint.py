"""orbax checkpointing of the whole training state and of the input pipeline's position.

A checkpoint ``workdir/checkpoints/<step>/`` holds two items: ``state`` (step, rng, params,
optimizers, history: an orbax pytree, written by every process, orbax multi-host) and ``data``,
the grain iterator's state as grain's orbax handler writes it (one JSON file per process). A
resumed run restores both, so its input pipeline continues with the next unseen batch.

A checkpoint that does not restore (an item's files unreadable, garbage or missing) is moved
aside, never deleted: ``restore_newest`` renames it ``<step>.corrupt`` in the same folder, warns
in one line and resumes from the newest one that restores. A checkpoint that reads but does not
have the state's structure is not corrupt (the code or config changed): that is an error, and
the checkpoint stays. A save that fails is a ``CheckpointError`` saying why in words; the
earlier checkpoints are left as they were.

Every process's iterator walks the same global batches (its slice of each, see
``data/pipeline.py``), so the per-process states are equal and a checkpoint written by N
processes restores with any number of processes: ``DataHandler`` falls back to the saved files
when there is none for this process count, after checking that they agree. Checkpoints written
before the ``data`` item existed (a single ``default`` item) restore too; their iterator is
placed at the restored step.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import sys
from typing import Any, Callable

import grain
import grain.checkpoint
from absl import logging as absl_logging
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from disen_jax.errors import Error

CORRUPT = ".corrupt"  # suffix of a checkpoint folder moved aside


class CheckpointError(Error):
  """A checkpoint folder that cannot be written or read as the run needs."""


class DataHandler(grain.checkpoint.CheckpointHandler):
  """grain's handler for iterator states, restorable with another process count."""

  def restore(self, directory: epath.Path, item: Any = None, args: Any = None):
    item = item or args.item
    own = directory / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    if own.exists():
      return super().restore(directory, item=item)
    saved = sorted(directory.glob("process_*-of-*.json"))
    states = {f.read_text() for f in saved}
    if len(states) != 1:
      raise ValueError(f"{directory}: cannot restore the input pipeline position with "
                       f"{jax.process_count()} process(es) from {[f.name for f in saved]} "
                       "(the saved states are missing or differ)")
    item.set_state(json.loads(states.pop()))
    item.start_prefetch()
    return item


@ocp.args.register_with_handler(DataHandler, for_save=True)
@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
  item: Any


@ocp.args.register_with_handler(DataHandler, for_restore=True)
@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
  item: Any


def _state_handler() -> ocp.PyTreeCheckpointHandler:
  """orbax's pytree handler (the format of ``StandardSave``). Replica-parallel writing (each
  replica of a replicated array writes a slice of it) only when several processes can share the
  writing: in one process it adds a compiled slice per array shape and writes nothing sooner
  (measured: a cross_domain state on 8 CPU devices saves in 3 s instead of 8)."""
  th = ocp.type_handlers
  registry = th.create_type_handler_registry(
      *((t, th.ScalarHandler()) for t in (int, float, bytes, np.number)),
      (np.ndarray, th.NumpyHandler()), (str, th.StringHandler()),
      (jax.Array, th.ArrayHandler(use_replica_parallel=jax.process_count() > 1)))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


def has_checkpoints(workdir: str) -> bool:
  """Whether ``workdir/checkpoints`` holds a step folder, without creating anything (the engine
  asks before its checks of the data and evaluators, which must leave a new workdir empty)."""
  directory = epath.Path(workdir) / "checkpoints"
  return directory.exists() and any(p.name.isdigit() for p in directory.iterdir())


class Checkpointer:
  """Saves the state pytree (and the data iterator) under ``workdir/checkpoints/<step>``."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3, keep_steps: tuple[int, ...] = ()):
    """Keeps the ``max_to_keep`` newest checkpoints and, beside them, those at ``keep_steps``
    (the engine's phase ends, so a later phase cannot delete the state an earlier one ended in)."""
    _silence_closed_loop_echoes()
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    policies = ocp.checkpoint_managers
    keep = policies.AnyPreservationPolicy([policies.LatestN(n=max_to_keep),
                                           policies.CustomSteps(steps=tuple(keep_steps))])
    self.manager = ocp.CheckpointManager(
        self.directory, item_handlers={"state": _state_handler(), "data": DataHandler()},
        options=ocp.CheckpointManagerOptions(preservation_policy=keep, create=True,
                                             cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_iterator=None) -> None:
    """Writes checkpoint ``step``; on failure removes what it wrote of it (orbax writes into a
    temporary folder, so the earlier checkpoints are untouched) and raises ``CheckpointError``."""
    items = {"state": ocp.args.PyTreeSave(state)}
    if data_iterator is not None:
      items["data"] = DataSave(data_iterator)
    try:
      with _orbax_unlogged():
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except  (any failure: the same words, the same cleanup)
      _silence_closed_loop_echoes()
      reason = _reason(e)
      del e  # orbax's pending writes die with it, before anything else is printed
      self._remove_partial(step)
      raise CheckpointError(f"checkpoint at step {step} not written: {reason} "
                            f"({os.path.join(self.directory, str(step))}); the earlier checkpoints "
                            "are kept: rerun to resume from the newest") from None

  def _remove_partial(self, step: int) -> None:
    if jax.process_index() == 0:
      for path in epath.Path(self.directory).glob(f"{step}.orbax-checkpoint-tmp*"):
        shutil.rmtree(path, ignore_errors=True)
    try:
      self.manager.reload()
    except Exception:  # pylint: disable=broad-except  (best effort: the run is ending)
      pass

  def restore_newest(self, abstract_at: Callable[[int], Any], data_iterator=None):
    """The newest checkpoint that restores, as ``(step, restore(...))``, or None when there is no
    checkpoint. ``abstract_at(step)``: the state's structure at that step. Newer checkpoints that
    do not restore are renamed ``<step>.corrupt`` (one warning line each); if none restores, a
    ``CheckpointError`` names the folder and leaves every checkpoint in place."""
    failed = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      abstract = abstract_at(step)
      reason = self._unreadable(step, abstract)
      if reason is None:
        try:
          restored = self.restore(abstract, data_iterator, step=step)
        except Exception as e:  # pylint: disable=broad-except  (whatever fails to read: not restorable)
          _silence_closed_loop_echoes()
          reason = _reason(e)
          del e  # orbax's pending reads die with it
        else:
          for bad, why in failed:
            self.move_aside(bad, why)
          return step, restored
      failed.append((step, reason))
    if failed:
      steps = ", ".join(str(s) for s, _ in failed)
      raise CheckpointError(
          f"no checkpoint in {self.directory} restores (steps {steps}; step {failed[0][0]}: "
          f"{failed[0][1]}): use a new workdir, or move that folder aside to start this one "
          "afresh; config.init_from can start a new workdir from another run's weights")
    return None

  def _unreadable(self, step: int, abstract) -> str | None:
    """Why checkpoint ``step`` cannot restore ``abstract`` before reading its arrays: None if it
    may; a reason if its metadata is unreadable. A structure that differs is no corruption: a
    ``CheckpointError``, the checkpoint kept."""
    if (epath.Path(self.directory) / str(step) / "default").exists():
      return None  # the legacy layout: restore() tells
    try:
      with _orbax_unlogged():
        metadata = self.manager.item_metadata(step)["state"]
    except Exception as e:  # pylint: disable=broad-except
      _silence_closed_loop_echoes()
      return _reason(e)
    tree = getattr(metadata, "tree", metadata)
    if not tree:
      return "state/_METADATA is missing or unreadable"
    saved = {_name(p): tuple(getattr(m, "shape", ()) or ()) for p, m in
             jax.tree_util.tree_leaves_with_path(tree)}
    wanted = {_name(p): tuple(a.shape) for p, a in jax.tree_util.tree_leaves_with_path(abstract)}
    if saved != wanted:
      diff = sorted(set(saved) ^ set(wanted)) or sorted(k for k in saved if saved[k] != wanted[k])
      detail = ", ".join(f"{k}: saved {saved.get(k, 'absent')}, needed {wanted.get(k, 'absent')}"
                         for k in diff[:3])
      raise CheckpointError(
          f"the checkpoint at step {step} in {self.directory} holds a state of another structure "
          f"than this run's ({len(diff)} arrays differ; {detail}): was it written by another "
          "version of the code or config? Use a new workdir, with config.init_from where it fits")
    return None

  def move_aside(self, step: int, reason: str) -> str:
    """Renames checkpoint ``step`` to ``<step>.corrupt`` (``.corrupt-2``, ... if taken) on process
    0, prints one warning line; returns the new path."""
    src = epath.Path(self.directory) / str(step)
    dst, n = src.parent / f"{step}{CORRUPT}", 1
    while dst.exists():
      n += 1
      dst = src.parent / f"{step}{CORRUPT}-{n}"
    if jax.process_index() == 0:
      src.rename(dst)
      print(f"warning: checkpoint {src} does not restore ({reason}); moved aside to {dst.name}",
            flush=True)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"disen_jax checkpoint {step} moved aside")
    self.manager.reload()
    return str(dst)

  def restore(self, state_like, data_iterator=None, step: int | None = None):
    """Restores into the structure, dtypes and shardings of ``state_like`` (arrays or abstract);
    with ``data_iterator``, also moves it to the saved position and returns ``(state, iterator)``."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
    legacy = epath.Path(self.directory) / str(step) / "default"
    if legacy.exists():
      state = ocp.StandardCheckpointer().restore(legacy, abstract)
      if data_iterator is None:
        return state
      grain.experimental.set_next_index(data_iterator, int(step))
      return state, data_iterator
    items = {"state": ocp.args.PyTreeRestore(
        abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract))}
    if data_iterator is not None:
      items["data"] = DataRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    return restored.state if data_iterator is None else (restored.state, restored.data)

  def restore_arrays(self, step: int) -> dict:
    """The state saved at ``step`` as nested dicts of numpy arrays, without knowing its structure
    (``--mode=translate``: the maps need only the parameters)."""
    metadata = self.manager.item_metadata(step)["state"]
    tree = getattr(metadata, "tree", metadata)
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(restore_args=restore_args)))
    return restored.state

  def close(self):
    self.manager.close()


@contextlib.contextmanager
def _orbax_unlogged():
  """orbax logs each failed write of a save at ERROR from its threads (a full disk: one line
  per array, hundreds of characters each) and a missing ``_METADATA`` at WARNING, then raises
  or returns nothing; the caller reports the failure in words, so meanwhile only fatal absl
  records are printed."""
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)


def _is_closed_loop_echo(exc) -> bool:
  return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _silence_closed_loop_echoes() -> None:
  """After a read or write failed, tensorstore's other operations of that orbax call finish later
  and call back into orbax's event loop, closed by then: each callback's ``RuntimeError: Event
  loop is closed`` reached the terminal (hundreds of tracebacks burying the one real cause,
  which ``_reason`` reports), and at exit asyncio logged each failed write again ("exception
  was never retrieved"). Installed with the first ``Checkpointer`` (the echoes can come before
  orbax raises); only those echoes are dropped, every other error is printed as before."""
  logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # "exception was never retrieved" (idem)
  if getattr(sys.unraisablehook, "drops_closed_loop_echoes", False):
    return
  unraisable, excepthook = sys.unraisablehook, sys.excepthook

  def on_unraisable(u):
    if not _is_closed_loop_echo(u.exc_value):
      unraisable(u)

  def on_exception(kind, value, tb):
    if not _is_closed_loop_echo(value):
      excepthook(kind, value, tb)

  on_unraisable.drops_closed_loop_echoes = True
  sys.unraisablehook, sys.excepthook = on_unraisable, on_exception


def _name(path) -> str:
  """A pytree key path as a dotted name (orbax's and jax's key types alike)."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return ".".join(parts)


def _reason(e: BaseException, limit: int = 240) -> str:
  """Why ``e`` happened, in words: the OS error of its chain if any (``no space left on
  device``), else its first line, cut to ``limit`` characters."""
  seen = e
  while seen is not None:
    if isinstance(seen, OSError) and seen.errno:
      return os.strerror(seen.errno).lower()
    seen = seen.__cause__ or seen.__context__
  text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
  text = text.split(" [tensorstore_spec")[0]  # tensorstore appends its whole spec
  for code in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EIO):
    if os.strerror(code).lower() in text.lower():
      return os.strerror(code).lower()
  return text if len(text) <= limit else f"{text[:limit // 2]} ... {text[-limit // 2:]}"
