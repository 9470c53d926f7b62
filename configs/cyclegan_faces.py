"""CycleGAN (reference defaults) on the procedural faces benchmark: the same data, variants
(``:cpu``, ``:test``), budget and schedule as ``uncoop_faces.py``, with CycleGAN's networks and
losses (instance-norm PatchGAN, cycle weight 10, identity weight 0.5)."""
from disen_jax.config_utils import sibling_config


def get_config(arg: str | None = None):
  if "cooperative" in (arg or ""):
    raise ValueError("cyclegan_faces.py has no 'cooperative' variant: CycleGAN is always cooperative")
  c = sibling_config(__file__, "uncoop_faces", arg)
  c.method = "cyclegan"
  del c["cooperative"], c["sequential"]
  del c.model["r_emit_after"]
  c.model.disc_norm = "instance"
  c.loss = type(c.loss)(dict(gan=1.0, cycle=10.0, identity=0.5))
  return c
