"""Harley et al. section 4.1: the 1-D synthetic benchmark (Figure 4).

Variants: ``:gaussian`` (default, the paper's data), ``:uniform`` (identifiable: C uniform),
``:cooperative`` / ``:gaussian,cooperative`` etc. (the baseline), ``:test`` (a few steps).
"""
import ml_collections

from disen_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = config_lib.variants(arg, ("gaussian", "uniform", "cooperative", "test"), __file__)
  c = config_lib.base("uncoop", "synthetic", evals=("synthetic",))
  c.cooperative = "cooperative" in v
  c.cooperative_steps = 0  # beyond the paper: > 0 trains cooperatively for that many steps first
  c.sequential = False
  c.num_steps = 60_000
  c.batch_size = 128
  c.history_size = 50

  c.data.variant = "uniform" if "uniform" in v else "gaussian"
  c.data.num_train = 10_000
  c.data.num_test = 2_000

  c.model = ml_collections.ConfigDict()
  c.model.kind = "mlp"
  c.model.hidden = 32
  c.model.disc_hidden = 32
  c.model.v_channels = 2
  c.model.c_channels = 1
  c.model.r_dim = 1

  c.loss = ml_collections.ConfigDict(dict(v=10.0, c=10.0, r=0.1, gan=1.0, identity=0.0))
  c.optim = ml_collections.ConfigDict(dict(lr=2e-4, b1=0.5, b2=0.999, hold_fraction=0.5))

  c.log_every = 1000
  c.eval_every = 10_000
  c.checkpoint_every = 10_000

  if "test" in v:
    config_lib.tiny(c)
    c.batch_size = 16
    c.data.num_train = 256
    c.data.num_test = 128
  return c
