"""Translation accuracy (Benaim & Wolf 2018, Figure 3; also CyCADA's and DTN's digit measure):
the fraction of test images x of ``source`` whose translation ``T(x)`` a digit classifier
trained on the *target* domain reads as x's class.

The classifier (``metrics.train_classifier``) is trained by the library on the target domain's
*training* split (``config.data``, its ``<target>/label`` ground truth) and scored on the target's
test split (``classifier_accuracy/<target>``: how far the measure can be trusted); then
``translation_accuracy/<source>2<target>`` on the source's test split. Neither set is ever
trained on. It is cached under ``cache_dir`` (default ``<workdir>/eval_cache``) by data seed,
resolution and steps, so the runs of an experiment share one.
"""
from __future__ import annotations


import numpy as np

from disen_jax import data as datalib
from disen_jax.evaluation import Needs, metrics
from disen_jax.evaluation.cross_domain import batched

DEFAULTS = dict(source="a", target="b", num_images=0, batch_size=256, classifier_steps=2000,
                classifier_width=32, cache_dir="")


def needs(spec, config) -> Needs:
  del spec
  ev = config.eval.translation_accuracy
  return Needs(maps=(f"translate_{ev.source}2{ev.target}",), domains=(ev.source, ev.target),
               fields=(f"{ev.source}/label", f"{ev.target}/label"))


def classifier(config, workdir: str | None):
  """``(params, apply_fn)`` of the target domain's digit classifier (trained or cached)."""
  ev, d = config.eval.translation_accuracy, config.data
  train = datalib.build(config.data, "train")
  images, labels = np.asarray(train.domains[ev.target]), train.extras[f"{ev.target}/label"]
  kwargs = dict(steps=ev.classifier_steps, width=ev.classifier_width, batch_size=64, seed=0)
  num_classes = int(labels.max()) + 1
  domain = dict(d.domains or {}).get(ev.target, ev.target)  # the source's name: methods that rename share it
  name = (f"classifier_{str(d.source).replace('/', '_')}_{domain}_{d.resolution}px_seed{d.seed}_"
          f"n{len(images)}_{ev.classifier_steps}steps_w{ev.classifier_width}.msgpack")
  return metrics.get_or_train_classifier(metrics.cache_path(ev, workdir, name), images, labels,
                                         num_classes, **kwargs)


def evaluate(maps, test_ds, *, config, workdir=None, step=None) -> dict[str, float]:
  del step
  ev = config.eval.translation_accuracy
  params, apply_fn = classifier(config, workdir)
  n = ev.num_images or None
  x, y = np.asarray(test_ds.domains[ev.source][:n]), test_ds.extras[f"{ev.source}/label"][:n]
  translated = batched(maps[f"translate_{ev.source}2{ev.target}"], x, size=ev.batch_size)
  target, target_y = test_ds.domains[ev.target], test_ds.extras[f"{ev.target}/label"]
  return {f"classifier_accuracy/{ev.target}": metrics.classifier_accuracy(params, apply_fn, target, target_y),
          f"translation_accuracy/{ev.source}2{ev.target}":
              metrics.classifier_accuracy(params, apply_fn, translated, y)}
