"""CycleGAN (reference defaults) on the procedural faces benchmark: the same data, variants
(``:cpu``, ``:test``), budget and schedule as ``uncoop_faces.py``, with CycleGAN's networks and
losses (instance-norm PatchGAN, cycle weight 10, identity weight 0.5)."""
import ml_collections

from disen_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_lib.variants(arg, ("cpu", "test"), __file__)  # CycleGAN is always cooperative
  c = config_lib.sibling(__file__, "uncoop_faces", arg)
  c.method = "cyclegan"
  del c["cooperative"], c["sequential"]
  del c.model["r_emit_after"], c.model["r_channels"], c.model["r_grid"]
  c.model.disc_norm = "instance"
  c.loss = ml_collections.ConfigDict(dict(gan=1.0, cycle=10.0, identity=0.5))
  return c
