"""The papers' public datasets, read with ``tfds.data_source`` (random access, no TensorFlow).

Preparing a tfds dataset (download, convert to ArrayRecord files) needs TensorFlow, which is not
in the core install; do it once per machine or shared data dir::

  pip install -e '.[prepare]'
  python -m disen_jax.main --mode=prepare --config=configs/<file>.py   # what the config reads

and training reads the prepared files without TensorFlow (``config.data.tfds_data_dir``, default
tfds's own: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). Records are decoded one at a time in
the input pipeline's threads (``lazy.Examples``); only the test split is decoded whole, capped at
``config.data.num_test`` examples (0 = all; ``num_train`` caps the train split the same way).

Sources (``config.data.source``), their domains and the preprocessing the papers used. Images
are resized (shorter side) and center-cropped to ``config.data.resolution`` (``images.py``),
whatever size tfds stores, float32 in [-1, 1]; labels are int32.

* ``mnist``: ``image`` (the 28 px digit zero-padded to 32, then resized; ``channels`` 1 or 3 for
  MNIST <-> SVHN), ``label``. Loaded by ``colored_mnist.load_digits``: ``config.data.loader``
  ``"tfds"`` (60k/10k), ``"idx"`` (the IDX files of ``config.data.mnist_dir``) or ``"auto"``.
* ``svhn_cropped``: ``image``, ``label``; splits train / test (``extra`` can be added with
  ``config.data.splits = {"train": "train+extra"}``).
* ``celeb_a``: ``image`` (the centered ``config.data.crop`` square, default the largest, i.e.
  178 x 178, then resized), ``attributes`` (float32 [40] in {0, 1}, ``CELEBA_ATTRIBUTES`` order),
  ``identity`` (the celebrity, LORD's classes); splits train / test (or validation). With
  ``config.data.attribute = "Eyeglasses"`` (any of the 40) the source is instead two unpaired
  domains, ``a`` (without) and ``b`` (with), as in Press et al.'s content transfer; that reads
  every record of the split once at start to sort them (tfds cannot skip the image without
  TensorFlow, so this takes a minute or so for the 163k train images on a many-core host).
* ``cycle_gan/<config>`` (horse2zebra, facades, maps, ...): unpaired ``a`` (trainA / testA) and
  ``b`` (trainB / testB). CycleGAN trains at 256 px loaded at 286 with random crops and flips:
  ``resolution = 256, load_size = 286, random_flip = True``.
* ``smallnorb``: ``image`` (left camera, 1 channel), ``category``, ``instance``, ``azimuth``,
  ``elevation``, ``lighting``; splits train / test.
* ``shapes3d``: ``image``, ``factors`` (int32 [6], ``SHAPES3D_FACTORS`` order).
* ``dsprites``: ``image`` (1 channel; tfds stores 0/1 pixels, scaled to 0/255),
  ``factors`` (int32 [5], ``DSPRITES_FACTORS`` order).
  shapes3d and dsprites have only a train split; like disentanglement_lib, their ``test`` split
  is the train split (capped by ``num_test``): they are scored on the training distribution.

``config.data.splits`` overrides the tfds split read for ``train`` / ``test`` with any tfds split
string (``"train[:90%]"``); a split the dataset does not have is an error naming the field.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import re
from typing import Callable

import numpy as np

from disen_jax.data import Dataset, capped, colored_mnist, images, lazy, register, source_name
from disen_jax.data.colored_mnist import MNIST_FIELDS
from disen_jax.errors import DataError

PREPARE = ("prepare it once with `python -m disen_jax.main --mode=prepare --config=<this config>` "
           "(needs `pip install -e '.[prepare]'`), or point config.data.tfds_data_dir at a prepared copy")
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young")
SHAPES3D_FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
DSPRITES_FACTORS = ("shape", "scale", "orientation", "x_position", "y_position")
SMALLNORB_LABELS = ("category", "instance", "azimuth", "elevation", "lighting")
MNIST_PADDED = 32  # MNIST's 28 px digits are zero-padded to 32 px, as the papers do
CYCLE_GAN_CONFIGS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo",
                     "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps", "facades",
                     "iphone2dslr_flower")


@dataclasses.dataclass(frozen=True)
class Spec:
  splits: dict          # our split -> the tfds split read by default
  available: tuple      # the tfds splits the dataset has
  channels: int         # default config.data.channels
  decoder: Callable     # (data_config, split) -> decode(record) -> dict of fields


def _image(data_config, split, *, binary: bool = False):
  """decode(pixels): ``images.from_array`` at the split's size; ``binary``: 0/1 pixels -> 0/255."""
  size = images.decode_size(data_config, split)
  channels = images.check_channels(data_config.channels)
  crop = data_config.crop or None
  prepare = (lambda p: np.where(np.asarray(p) > 0, np.uint8(255), np.uint8(0))) if binary else np.asarray
  return lambda pixels: images.from_array(prepare(pixels), size=size, channels=channels, crop=crop)


def _svhn(data_config, split):
  image = _image(data_config, split)
  return lambda r: {"image": image(r["image"]), "label": np.int32(r["label"])}


def _celeb_a(data_config, split):
  image = _image(data_config, split)
  return lambda r: {"image": image(r["image"]),
                    "attributes": np.asarray([r["attributes"][a] for a in CELEBA_ATTRIBUTES], np.float32),
                    "identity": np.int32(r["identity"]["Identity_No"])}


def _smallnorb(data_config, split):
  image = _image(data_config, split)
  return lambda r: {"image": image(r["image"]),
                    **{k: np.int32(r["instance" if k == "instance" else f"label_{k}"]) for k in SMALLNORB_LABELS}}


def _factors(names, binary: bool = False):
  def decoder(data_config, split):
    image = _image(data_config, split, binary=binary)
    return lambda r: {"image": image(r["image"]),
                      "factors": np.asarray([r[f"label_{k}"] for k in names], np.int32)}
  return decoder


SPECS = {
    "svhn_cropped": Spec({"train": "train", "test": "test"}, ("train", "test", "extra"), 3, _svhn),
    "celeb_a": Spec({"train": "train", "test": "test"}, ("train", "validation", "test"), 3, _celeb_a),
    "smallnorb": Spec({"train": "train", "test": "test"}, ("train", "test"), 1, _smallnorb),
    "shapes3d": Spec({"train": "train", "test": "train"}, ("train",), 3, _factors(SHAPES3D_FACTORS)),
    "dsprites": Spec({"train": "train", "test": "train"}, ("train",), 1,
                     _factors(DSPRITES_FACTORS, binary=True)),
}


def tfds_split(name: str, split: str, overrides, defaults: dict, available: tuple) -> str:
  """The tfds split string our ``split`` reads (``overrides``: ``config.data.splits``)."""
  splits = dict(defaults, **dict(overrides or {}))
  if split not in splits:
    raise DataError(f"unknown split {split!r} of tfds {name!r}; expected one of {sorted(splits)}")
  value = str(splits[split])
  for part in value.split("+"):
    base = re.split(r"[\[(]", part)[0].strip()
    if base not in available:
      raise DataError(f"split {value!r} (config.data.splits.{split} or its default): tfds {name!r} "
                       f"has no split {base!r}; it has {list(available)}")
  return value


def data_source(name: str, split: str, data_config):
  """``tfds.data_source(name, split)`` from ``config.data.tfds_data_dir``, never downloading."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = data_config.tfds_data_dir or None
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # pylint: disable=broad-except
    where = f"tfds dataset {name!r} (config.data.source={data_config.source!r})"
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
      raise DataError(f"{where} is not prepared in {builder.data_dir}: {PREPARE}") from e
    raise DataError(f"cannot open split {split!r} of {where} in {builder.data_dir}: {e}") from e


def _examples(name: str, tsplit: str, data_config, split: str, decode) -> lazy.Examples:
  """Split ``tsplit`` of tfds ``name`` decoded by ``decode``, capped as our ``split``."""
  examples = lazy.Examples(data_source(name, tsplit, data_config), decode, what=f"tfds {name} {tsplit}")
  return capped(examples, data_config, split)


def build_paired(name: str, data_config, split: str) -> Dataset:
  """Every field of tfds ``name`` as a paired domain (see the module docstring)."""
  spec = SPECS[name]
  tsplit = tfds_split(name, split, data_config.splits, spec.splits, spec.available)
  if name == "celeb_a" and data_config.attribute:
    return _celeb_a_by_attribute(tsplit, data_config, split)
  examples = _examples(name, tsplit, data_config, split, spec.decoder(data_config, split))
  return Dataset(domains=examples.columns(), paired=True)


TFDS_FIELDS = dict(tfds_data_dir="", splits={}, crop=0)  # config.data of every tfds source
for _name, _spec in SPECS.items():
  _fields = dict(channels=_spec.channels, **TFDS_FIELDS, **({"attribute": ""} if _name == "celeb_a" else {}))
  register(_name, **_fields)(lambda data_config, split, _name=_name: build_paired(_name, data_config, split))


def _celeb_a_by_attribute(tsplit: str, data_config, split: str) -> Dataset:
  attribute = data_config.attribute
  if attribute not in CELEBA_ATTRIBUTES:
    raise DataError(f"config.data.attribute={attribute!r} is not a CelebA attribute; expected one "
                     f"of {list(CELEBA_ATTRIBUTES)}")
  source = data_source("celeb_a", tsplit, data_config)
  flags = lazy.Examples(source, lambda r: {"flag": np.bool_(r["attributes"][attribute])},
                        what=f"tfds celeb_a {tsplit}")
  has = np.asarray(flags.columns()["flag"])
  image = _image(data_config, split)
  everything = lazy.Examples(source, lambda r: {"image": image(r["image"])}, what=f"tfds celeb_a {tsplit}")
  domains = {}
  for domain, value in (("a", False), ("b", True)):
    idx = np.flatnonzero(has == value)
    if not len(idx):
      raise DataError(f"config.data.attribute={attribute!r}: no image of tfds celeb_a {tsplit} is "
                       f"{'with' if value else 'without'} it")
    domains[domain] = capped(everything.subset(idx), data_config, split).columns()["image"]
  return Dataset(domains=domains)


@register("cycle_gan", resolution=256, **TFDS_FIELDS)
def build_cycle_gan(data_config, split: str) -> Dataset:
  """``cycle_gan/<config>``: unpaired domains ``a`` and ``b`` (see the module docstring)."""
  config = source_name(data_config)[1]
  if config not in CYCLE_GAN_CONFIGS:
    raise DataError(f"config.data.source={data_config.source!r}: expected cycle_gan/<config> with "
                     f"<config> one of {list(CYCLE_GAN_CONFIGS)}")
  name = f"cycle_gan/{config}"
  image = _image(data_config, split)
  domains = {}
  for domain in ("a", "b"):
    defaults = {"train": f"train{domain.upper()}", "test": f"test{domain.upper()}"}
    tsplit = tfds_split(name, split, None, defaults, ("trainA", "trainB", "testA", "testB"))
    examples = _examples(name, tsplit, data_config, split, lambda r: {"image": image(r["image"])})
    domains[domain] = examples.columns()["image"]
  return Dataset(domains=domains)


@register("mnist", resolution=32, channels=1, **TFDS_FIELDS, **MNIST_FIELDS)
def build_mnist(data_config, split: str) -> Dataset:
  """``mnist``: ``image`` and ``label`` (see the module docstring)."""
  digits, labels, _ = colored_mnist.load_digits(data_config, split)
  image = _image(data_config, split)
  pad = [(0, 0)] + [((MNIST_PADDED - s) // 2, (MNIST_PADDED - s + 1) // 2) for s in digits.shape[1:]]
  digits = np.pad(digits, pad)
  examples = lazy.Examples(range(len(digits)), lambda i: {"image": image(digits[i]), "label": np.int32(labels[i])},
                           what=f"mnist {split}")
  return Dataset(domains=capped(examples, data_config, split).columns(), paired=True)


def tfds_names(data_config) -> list[str]:
  """The tfds datasets ``config.data`` reads."""
  name, sub = source_name(data_config)
  if name in SPECS:
    return [name]
  if name == "cycle_gan":
    return [f"cycle_gan/{sub}"]
  if name in ("mnist", "colored_mnist") and data_config.loader != "idx":
    return ["mnist"]
  raise DataError(f"config.data.source={data_config.source!r} does not read a tfds dataset; "
                   f"the tfds sources are {sorted([*SPECS, 'cycle_gan/<config>', 'mnist', 'colored_mnist'])}")


def tensorflow_available() -> bool:
  return importlib.util.find_spec("tensorflow") is not None


def prepare(data_config) -> list[str]:
  """Downloads and prepares (as ArrayRecord, for ``tfds.data_source``) what ``config.data`` reads."""
  names = tfds_names(data_config)
  if not tensorflow_available():
    raise DataError("preparing tfds datasets needs TensorFlow, which the core install leaves out: "
                     "pip install -e '.[prepare]'")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  for name in names:
    builder = tfds.builder(name, data_dir=data_config.tfds_data_dir or None)
    builder.download_and_prepare(file_format="array_record")
  return names
