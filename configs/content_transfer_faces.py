"""Content transfer (Press et al., ICLR 2019) on procedural faces without (``a``) and with (``b``)
glasses (``synthfaces_glasses``), scored against exact renders (evaluator ``faces_glasses``).

``get_config()`` is the paper's setting (the official code's defaults: 128 px, sep = 25, a
512-channel code on a 2x2 grid, batch 32, Adam 2e-4 / b1 0.5, gradients clipped to norm 5,
confusion weight 0.001, random flips; its 1.25M iterations) for accelerators. ``:cpu`` is sized
for a 2-core CPU (64 px, narrower networks, a 4x4 code grid; see the README's results for the
budget and why); ``:test`` is tiny. ``:celeba`` is the paper's own data for users who can download
it: tfds ``celeb_a`` split by the ``Eyeglasses`` attribute (any of the 40 via
``--config.data.attribute``), the centred 178 px square resized to 128 as the official code does,
scored by its reconstructions (CelebA has no ground truth for a transfer).

  python -m disen_jax.main --config=configs/content_transfer_faces.py:cpu --workdir=runs/ct_faces
"""
import ml_collections

from disen_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = config_lib.variants(arg, ("cpu", "test", "celeba"), __file__)
  if "celeba" in v:
    c = config_lib.base("content_transfer", "celeb_a", evals=("reconstruction",))
    c.data.attribute = "Eyeglasses"  # domain a: without it, b: with it
  else:
    c = config_lib.base("content_transfer", "synthfaces_glasses", evals=("faces_glasses",))
  c.num_steps = 1_250_000
  c.batch_size = 32

  c.data.resolution = 128
  c.data.num_test = 500
  c.data.random_flip = True
  if "celeba" not in v:
    c.data.num_a = 8000
    c.data.num_b = 8000

  c.model = ml_collections.ConfigDict()
  c.model.features = 32         # E1/E2's first conv; doubling per layer up to code_channels (E2: 4x)
  c.model.code_channels = 512   # E1's code has code_channels - sep channels, E2's sep
  c.model.sep = 25
  c.model.num_down = 6          # stride-2 layers: the code grid is resolution / 2^num_down (>= 2)
  c.model.disc_hidden = 512
  c.model.conv_impl = "auto"

  c.loss = ml_collections.ConfigDict(dict(confusion=0.001))
  c.optim = ml_collections.ConfigDict(dict(lr=2e-4, disc_lr=2e-4, b1=0.5, b2=0.999, clip=5.0,
                                           hold_fraction=1.0))

  c.log_every = 100
  c.eval_every = 50_000
  c.checkpoint_every = 10_000

  if "cpu" in v:
    c.data.resolution = 64
    c.data.num_a = 4000
    c.data.num_b = 4000
    c.model.features = 16
    c.model.code_channels = 128
    c.model.sep = 8
    c.model.num_down = 4
    c.num_steps = 1500
    c.optim.hold_fraction = 0.5
    c.log_every = 100
    c.eval_every = 1500
    c.checkpoint_every = 500
    c.eval.faces_glasses.classifier_steps = 500
    c.eval.faces_glasses.regressor_steps = 500
    c.eval.faces_glasses.num_probe = 2000
  if "test" in v:
    config_lib.tiny(c)
    c.batch_size = 8
    c.data.resolution = 16
    c.data.num_a = 16
    c.data.num_b = 16
    c.data.num_test = 16
    c.data.num_identities = 4
    c.model.features = 4
    c.model.code_channels = 16
    c.model.sep = 4
    c.model.num_down = 3
    c.model.disc_hidden = 8
    c.eval.faces_glasses.classifier_steps = 10
    c.eval.faces_glasses.regressor_steps = 10
    c.eval.faces_glasses.num_probe = 64
    c.eval.faces_glasses.num_show = 3
  return c
