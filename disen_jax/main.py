"""Command line: ``python -m disen_jax.main --config=configs/<file>.py[:variant] --workdir=DIR``.

Every config field can be overridden, e.g. ``--config.optim.lr=1e-4``; an unknown field or a
value of the wrong type is an error that names it.
"""
from __future__ import annotations

import sys

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/uncoop_faces.py:cpu.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "translate"],
                          "train: train (or resume) and evaluate; translate: translate a folder.")
_INPUT = flags.DEFINE_string("input", None, "translate: folder of input images.")
_OUTPUT = flags.DEFINE_string("output", None, "translate: folder for the outputs.")
_DIRECTION = flags.DEFINE_enum("direction", "v2c", ["v2c", "c2v"], "translate: direction.")
_RESIDUAL_FROM = flags.DEFINE_string("residual_from", None,
                                     "translate c2v (uncoop): the V image whose residual to use.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multihost).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multihost).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  import jax  # pylint: disable=g-import-not-at-top

  if _MULTIHOST.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  from disen_jax import train  # pylint: disable=g-import-not-at-top

  try:
    if _MODE.value == "translate":
      from disen_jax import translate  # pylint: disable=g-import-not-at-top
      if not (_WORKDIR.value and _INPUT.value and _OUTPUT.value):
        raise app.UsageError("--mode=translate needs --workdir, --input and --output")
      written = translate.translate_folder(_WORKDIR.value, _INPUT.value, _OUTPUT.value,
                                           direction=_DIRECTION.value,
                                           residual_from=_RESIDUAL_FROM.value)
      print(f"wrote {len(written)} images to {_OUTPUT.value}")
      return
    if _CONFIG.value is None:
      raise app.UsageError("--config is required, e.g. --config=configs/uncoop_faces.py:cpu")
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (train.Interrupted, train.NonFiniteLossError, ValueError, FileNotFoundError,
          NotADirectoryError) as e:
    print(f"error: {e}" if not isinstance(e, train.Interrupted) else str(e), file=sys.stderr)
    sys.exit(130 if isinstance(e, train.Interrupted) else 1)


if __name__ == "__main__":
  app.run(main)
