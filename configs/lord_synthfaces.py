"""LORD (Gabbay & Hoshen, ICLR 2020) on procedural faces: class = identity (face shape, skin, hair
and eye colours), content = expression and head pose, one of 48 settings rendered for every actor
(``synthfaces_lord``: the exact render of any identity with any content exists). The last 10 of
the 60 actors are held out as unseen classes. The paper's CelebA experiment has no ground truth
for a transfer; this is its measurable analogue. The method's settings, budgets and variants are
``lord_cars3d.py``'s (``cpu``, ``test``, ``pytorch``, ``amortized``, ``kl``, ``autoencoder``);
only the data changes, and the phases count epochs of the 50 x 48 training faces.

  python -m disen_jax.main --config=configs/lord_synthfaces.py:cpu --workdir=runs/lord_synthfaces
"""
import ml_collections

from disen_jax import config_lib

IDENTITIES, TEST_IDENTITIES, CONTENTS = 60, 10, 48


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.sibling(__file__, "lord_cars3d", arg)  # checks the variants
  v = config_lib.variants(arg, None, __file__)
  cars = c.data
  c.data = config_lib.data("synthfaces_lord")
  c.data.num_identities = IDENTITIES
  c.data.test_identities = TEST_IDENTITIES
  c.data.num_contents = CONTENTS
  c.data.label = "identity"
  c.data.domains = {"x": "image"}
  c.data.resolution = cars.resolution
  c.eval.class_content.content_fields = ("content",)
  if "test" in v:
    c.data.num_train = c.data.num_test = 2 * CONTENTS  # two actors each
  elif "cpu" in v:
    c.data.num_train = 20 * CONTENTS  # the first 20 actors, as :cpu's 20 Cars3D cars
  else:  # the paper's 200 epochs per phase, in epochs of these faces
    epoch = (IDENTITIES - TEST_IDENTITIES) * CONTENTS // c.batch_size
    c.phases = ml_collections.ConfigDict(dict(latent=200 * epoch, amortize=200 * epoch))
  return c
