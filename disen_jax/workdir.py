"""What keeps a workdir's record true: one run at a time, and a config that describes its checkpoints.

* ``Lock``: an OS file lock (``fcntl.flock``) on ``workdir/.lock``, held for the whole run. The
  kernel releases it when its process ends, however it ends (``kill -9`` included), so a rerun is
  never blocked by a dead run; a second run on a workdir in use stops at once, naming the
  workdir and the running process (host, pid). In a multi-host job process 0 holds it for the job
  and tells the others whether it got it, so the processes of one job share it.
* ``check_config``: a rerun's config against the saved ``config.json``, before anything compiles.
  Fields that leave the checkpoints valid (``config_lib.RESUME_SAFE``: steps, logging, evaluation,
  data paths, ...) may change; any other change is refused, naming each field with both values.
* ``record_start``: once a run has started from its config (state initialized or restored),
  writes ``config.json`` and appends one line to ``config_history.jsonl`` (step, host, pid, the
  fields that changed since the saved config).
"""
from __future__ import annotations

import datetime
import fcntl
import fnmatch
import json
import os
import socket

import jax
import numpy as np
from etils import epath

from disen_jax import config_lib
from disen_jax import logging as loglib
from disen_jax.errors import ConfigError

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
HISTORY_FILE = "config_history.jsonl"
MISSING = "<absent>"  # a field one of two configs lacks (``changes``)


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Lock:
  """``with Lock(workdir):`` one run per workdir (see the module docstring). Workdirs on object
  stores (``gs://``) cannot be locked: there the lock does nothing."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self._file = None

  def __enter__(self):
    error = ""
    if jax.process_index() == 0 and "://" not in self.workdir:
      error = self._acquire()
    if jax.process_count() > 1:  # every process of the job learns process 0's answer
      error = _broadcast_text(error)
    if error:
      self.__exit__()
      raise ConfigError(error)
    return self

  def _acquire(self) -> str:
    path = os.path.join(self.workdir, LOCK_FILE)
    f = open(path, "a+")  # pylint: disable=consider-using-with  (held until __exit__)
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      f.close()
      return (f"--workdir={self.workdir} is in use by {owner}: wait for that run to end (or stop "
              "it), or use another workdir")
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on host {socket.gethostname()} (since {_now()})\n")
    f.flush()
    self._file = f
    return ""

  def __exit__(self, *exc):
    if self._file is not None:
      self._file.close()  # closing the file releases the lock
      self._file = None


def _broadcast_text(text: str, size: int = 1024) -> str:
  """Process 0's ``text`` on every process."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  data = text.encode()[:size]
  data = np.frombuffer(data + b"\0" * (size - len(data)), np.uint8)
  return np.asarray(multihost_utils.broadcast_one_to_all(data)).tobytes().rstrip(b"\0").decode()


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) and v:
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def config_dict(config) -> dict:
  """The config as ``config.json`` holds it (tuples as lists)."""
  return json.loads(config.to_json_best_effort())


def saved_config(workdir: str) -> dict | None:
  path = epath.Path(workdir) / CONFIG_FILE
  if not path.exists():
    return None
  try:
    return json.loads(path.read_text())
  except ValueError as e:
    raise ConfigError(f"{path} is not a JSON config ({e}); move it aside to start the workdir's "
                      "record afresh") from e


def changes(old: dict, new: dict) -> dict:
  """``{dotted field: [old value, new value]}`` of every field that differs (``MISSING`` where a
  field is absent on one side)."""
  a, b = _flat(old), _flat(new)
  return {k: [a.get(k, MISSING), b.get(k, MISSING)] for k in sorted(set(a) | set(b))
          if a.get(k, MISSING) != b.get(k, MISSING)}


def resume_safe(field: str, extra: tuple[str, ...] = ()) -> bool:
  return any(fnmatch.fnmatchcase(field, p) for p in config_lib.RESUME_SAFE + tuple(extra))


def check_config(workdir: str, config, *, strict: bool, extra_safe: tuple[str, ...] = ()) -> dict:
  """The changes from the workdir's saved config to ``config`` (``{}`` without a saved one).
  ``strict`` (the workdir has checkpoints): a ``ConfigError`` naming every change that would not
  fit them (``extra_safe``: more resume-safe field patterns, e.g. a method's ``RESUME_SAFE``)."""
  old = saved_config(workdir)
  if old is None:
    return {}
  diff = changes(old, config_dict(config))
  if not strict:
    return diff
  # A field the saved config lacks came with a newer version of the code: accepted, recorded.
  unsafe = {k: v for k, v in diff.items() if v[0] != MISSING and not resume_safe(k, extra_safe)}
  if unsafe:
    fields = "; ".join(f"config.{k}: {json.dumps(o)} in the workdir, {json.dumps(n)} now"
                       for k, (o, n) in unsafe.items())
    raise ConfigError(f"--workdir={workdir} holds checkpoints of another config ({fields}); rerun "
                      f"with the workdir's values, or use a new workdir (with config.init_from="
                      f"{workdir!r} to start from its weights where the networks still fit)")
  return diff


def record_start(workdir: str, config, *, step: int, diff: dict) -> None:
  """``config.json`` and one line of ``config_history.jsonl``, once the run has started (process 0)."""
  if not loglib.is_writer():
    return
  path = epath.Path(workdir)
  (path / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2))
  line = json.dumps({"time": _now(), "step": int(step), "host": socket.gethostname(),
                     "pid": os.getpid(), "changes": diff}) + "\n"
  history = path / HISTORY_FILE
  if "://" in workdir:
    history.write_text((history.read_text() if history.exists() else "") + line)
  else:
    with history.open("a") as f:
      f.write(line)
