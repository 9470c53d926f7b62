"""Command line: ``python -m disen_jax.main --config=configs/<file>.py[:variant] --workdir=DIR``.

Every config field can be overridden, e.g. ``--config.optim.lr=1e-4``; an unknown field or a
value of the wrong type is an error that names it.

``--mode=translate --workdir=RUN --input=DIR --output=DIR --direction=a2b [--reference=IMAGE]``
translates a folder with a trained run, for every method with ``translate_<a>2<b>`` maps.

``--mode=prepare --config=...`` downloads and prepares the tfds datasets the config reads (needs
TensorFlow: ``pip install -e '.[prepare]'``); training then reads them without TensorFlow.

Many hosts: run the same command on every host with ``--multihost`` (or ``DISEN_JAX_MULTIHOST=1``
in the environment, as on a scheduler). ``--coordinator_address``, ``--num_processes`` and
``--process_id`` default to ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``; with none set, ``jax.distributed.initialize`` detects the cluster (Cloud TPU,
Slurm, Open MPI).
"""
from __future__ import annotations

import os
import sys
import traceback

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/uncoop_faces.py:cpu.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "translate", "prepare"],
                          "train: train (or resume) and evaluate; translate: translate a folder; "
                          "prepare: download and prepare the config's tfds datasets.")
_INPUT = flags.DEFINE_string("input", None, "translate: folder of input images.")
_OUTPUT = flags.DEFINE_string("output", None, "translate: folder for the outputs.")
_DIRECTION = flags.DEFINE_string("direction", None,
                                 "translate: a2b, one of the run's translate_<a>2<b> maps (e.g. v2c).")
_REFERENCE = flags.DEFINE_string("reference", None,
                                 "translate: an image of the target domain whose style the outputs "
                                 "take (uncoop's residual: lighting, background; cross_domain's "
                                 "exclusive part).")
_MULTIHOST = flags.DEFINE_bool("multihost", os.environ.get("DISEN_JAX_MULTIHOST", "") not in ("", "0"),
                               "Call jax.distributed.initialize() first (env DISEN_JAX_MULTIHOST=1).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"),
                                   "host:port of process 0 (multihost; env JAX_COORDINATOR_ADDRESS).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", os.environ.get("JAX_NUM_PROCESSES"),
                                      "Number of processes (multihost; env JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", os.environ.get("JAX_PROCESS_ID"),
                                   "This process's index (multihost; env JAX_PROCESS_ID).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from disen_jax import errors, train  # pylint: disable=g-import-not-at-top  (does not start JAX)

  if _MULTIHOST.value:
    train.initialize_distributed(coordinator_address=_COORDINATOR.value,
                                 num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)

  message, code = "", 0
  try:
    _run(train)
  except app.UsageError:
    raise
  except train.Interrupted as e:
    message, code = str(e), 130
  except KeyboardInterrupt:
    message = "interrupted (SIGINT): the newest checkpoint is kept; rerun the same command to resume"
    code = 130
  except errors.Error as e:  # the library's own: a user's mistake, one line
    message, code = f"error: {e}", 1
  except OSError as e:  # the machine's (a full disk, a permission): one line naming the file
    message, code = f"error: {e}", 1
  except Exception:  # pylint: disable=broad-except  (a bug: its traceback, once)
    traceback.print_exc()
    code = 1
  # Here, outside the handlers, the exception and the frames it held are gone: the checkpointer's
  # and the input pipeline's pending work was closed before, none of it outlives the run.
  if code:
    if message:
      print(message, file=sys.stderr)
    sys.exit(code)


def _run(train):
  """The work of ``--mode``; errors propagate to ``main``, which turns them into one line."""
  if _MODE.value == "translate":
    from disen_jax import translate  # pylint: disable=g-import-not-at-top
    if not (_WORKDIR.value and _INPUT.value and _OUTPUT.value):
      raise app.UsageError("--mode=translate needs --workdir, --input and --output")
    written = translate.translate_folder(_WORKDIR.value, _INPUT.value, _OUTPUT.value,
                                         direction=_DIRECTION.value, reference=_REFERENCE.value)
    print(f"wrote {len(written)} images to {_OUTPUT.value}")
    return
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=configs/uncoop_faces.py:cpu")
  if _MODE.value == "prepare":
    from disen_jax.data import tfds_sources  # pylint: disable=g-import-not-at-top
    for name in tfds_sources.prepare(_CONFIG.value.data):
      print(f"prepared tfds dataset {name}")
    return
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
