"""LORD (Gabbay & Hoshen, ICLR 2020) on COIL-20: class = object, content = pose (72 turntable
views, 5 degrees apart), grayscale; the last 4 of the 20 objects are held out as unseen classes.
The paper has no COIL-20 experiment: this is a second dataset with exact ground truth for its
measures. The method's settings, budgets and variants are ``lord_cars3d.py``'s (``cpu``,
``test``, ``pytorch``, ``amortized``, ``kl``, ``autoencoder``); only the data changes, and the
phases count epochs of COIL-20's 16 x 72 training images.

  python -m disen_jax.main --config=configs/lord_coil20.py:cpu --workdir=runs/lord_coil20
"""
import ml_collections

from disen_jax import config_lib

TEST_OBJECTS = 4
VIEWS = 72


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.sibling(__file__, "lord_cars3d", arg)  # checks the variants
  v = config_lib.variants(arg, None, __file__)
  cars = c.data
  c.data = config_lib.data("coil20")
  c.data.path = config_lib.shared_data(__file__, "coil20", "coil20_32.npz")
  c.data.test_objects = TEST_OBJECTS
  c.data.label = "object"
  c.data.domains = {"x": "image"}
  c.data.channels = 1
  c.data.resolution = cars.resolution
  c.eval.class_content.content_fields = ("pose",)
  if "test" in v:
    c.data.num_train = c.data.num_test = 2 * VIEWS  # two objects each
  elif "cpu" not in v:  # the paper's 200 epochs per phase, in COIL-20's epochs
    epoch = (20 - TEST_OBJECTS) * VIEWS // c.batch_size
    c.phases = ml_collections.ConfigDict(dict(latent=200 * epoch, amortize=200 * epoch))
  return c
