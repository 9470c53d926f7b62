"""orbax checkpointing of the whole training state (step, rng, params, optimizers, history)."""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves the state pytree under ``workdir/checkpoints/<step>`` and restores the newest."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self.manager.wait_until_finished()

  def restore(self, state_like, step: int | None = None):
    """Restores into the structure, dtypes and shardings of ``state_like`` (arrays or abstract)."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self):
    self.manager.close()
