"""The input pipeline every source goes through, built on grain.

  random-access domains -> seeded shuffle, reshuffled every epoch -> read + decode (lazy domains)
  -> random crop / flip (``config.data.load_size`` / ``random_flip``) -> batch -> this process's
  shard of every global batch -> threads + prefetch (``config.data.num_threads`` / ``prefetch``)

Each domain is a ``grain.MapDataset``: ``range(n).shuffle(seed).repeat()`` (grain reseeds the
shuffle every epoch) mapped through the domain's reader. Unpaired domains have their own size and
their own shuffle (seeded by the domain's position in sorted order) and are zipped; paired
domains share one index. Position ``j`` of the resulting stream is a pure function of
``(seed, j)``, and global batch ``t`` is positions ``[t * B, (t + 1) * B)``.

Sharding: with ``P`` processes, process ``p`` keeps the contiguous slice ``[p * B/P, (p+1) * B/P)``
of every global batch (``stream.batch(B/P)[p::P]``), so it decodes only its own ``B/P`` examples
and the processes' shards of an epoch are disjoint and cover it. Because the shard is taken
*after* the global shuffle, the global batch assembled with
``jax.make_array_from_process_local_data`` is the same for any number of processes: a run on 2
hosts trains on exactly the batches of a run on 1. Augmentation is seeded by the global stream
position for the same reason.

Besides the domains, an example can carry fields aligned with a domain, read at the same index
(``fields``): the engine adds the ones a method asks for (``methods.Spec.fields``): ``<d>/index``
(the example's position in the training split, for per-example latents), ``<d>/label`` and
``<d>/labelled`` (the class, -1 where ``config.data.num_labels`` hid it, and whether it is known).
``labelled`` adds a stream of the labelled examples alone (``labelled/<d>``, ``labelled/<d>/label``),
zipped with the others, for methods that draw labelled examples at a rate of their own.

Element ``t`` of ``local_batches(...)`` is this process's part of global batch ``t``, so the
iterator's position is the training step; grain's iterator state (``get_state``) is saved in the
orbax checkpoint next to the training state, and a resumed run continues with the next unseen
batch (``disen_jax/checkpoint.py``).
"""
from __future__ import annotations

from typing import Mapping

import grain
import numpy as np

from disen_jax.data import images, lazy
from disen_jax.errors import DataError

_SHUFFLE, _AUGMENT = 0, 1  # seed purposes
_LABELLED = 1000  # domain ids of the labelled-only streams


def stream_seed(seed: int, *keys: int) -> int:
  """A 32-bit seed (what grain's shuffle takes) for ``(seed, *keys)``."""
  return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


def index_stream(n: int, *, seed: int, domain_id: int = 0) -> grain.MapDataset:
  """Indices ``0..n-1`` in a fresh seeded order every epoch, without end."""
  return grain.MapDataset.range(n).shuffle(seed=stream_seed(seed, _SHUFFLE, domain_id)).repeat()


def _merge(parts) -> dict:
  return {k: v for part in parts for k, v in part.items()}


def examples(ds, *, seed: int, fields: Mapping[str, Mapping[str, np.ndarray]] | None = None,
             labelled: Mapping[str, np.ndarray] | None = None) -> grain.MapDataset:
  """The endless stream of examples ``{domain: array, **fields}`` (see the module docstring).

  ``fields[d]`` are arrays aligned with domain ``d`` (e.g. ``{"d/index": arange(n)}``) read
  with it at the same index. ``labelled[d]`` (indices into domain ``d``) adds a stream of those
  examples only, as ``labelled/<d>`` and ``labelled/<d>/label`` (from ``fields[d]["d/label"]``)."""
  fields, labelled = fields or {}, labelled or {}
  names = sorted(ds.domains)
  columns = lambda group: {k: v for d in group for k, v in {d: ds.domains[d], **fields.get(d, {})}.items()}
  if ds.paired:
    streams = [index_stream(len(ds.domains[names[0]]), seed=seed).map(lazy.reader(columns(names)))]
  else:
    streams = [index_stream(len(ds.domains[name]), seed=seed, domain_id=i).map(lazy.reader(columns([name])))
               for i, name in enumerate(names)]
  for i, (d, idx) in enumerate(sorted(labelled.items())):
    read = lazy.reader({d: ds.domains[d], f"{d}/label": fields[d][f"{d}/label"]})
    streams.append(index_stream(len(idx), seed=seed, domain_id=_LABELLED + i).map(
        lambda j, idx=idx, read=read: {"labelled/" + k: v for k, v in read(int(idx[j])).items()}))
  return streams[0] if len(streams) == 1 else grain.experimental.ZipMapDataset(parents=streams).map(_merge)


def augmentation(data_config, *, paired: bool):
  """The training-time random crop / flip that ``config.data`` asks for, or None."""
  flip = bool(data_config.random_flip)
  if not (flip or data_config.load_size):
    return None
  return images.augmenter(size=images.check_size(data_config.resolution), flip=flip, paired=paired)


def local_batches(ds, *, batch_size: int, seed: int, process_index: int = 0, process_count: int = 1,
                  augment=None, fields=None, labelled=None) -> grain.MapDataset:
  """Element ``t``: this process's ``batch_size / process_count`` examples of global batch ``t``
  (``fields``, ``labelled``: see ``examples``)."""
  if batch_size <= 0 or batch_size % process_count:
    raise DataError(f"config.batch_size={batch_size} must be a positive multiple of the "
                    f"{process_count} processes")
  stream = examples(ds, seed=seed, fields=fields, labelled=labelled)
  if augment is not None:
    stream = stream.random_map(augment, seed=stream_seed(seed, _AUGMENT))
  return stream.batch(batch_size // process_count, drop_remainder=True)[process_index::process_count]


def iterator(batches: grain.MapDataset, data_config=None) -> grain.DatasetIterator:
  """An iterator over ``batches`` that decodes ahead in ``config.data.num_threads`` threads,
  keeping ``config.data.prefetch`` batches ready (default: two per thread); ``get_state`` /
  ``set_state`` give its position."""
  threads = lazy.num_threads(data_config)
  prefetch = data_config.prefetch if data_config is not None else 0
  if not isinstance(prefetch, int) or prefetch < 0:
    raise DataError(f"config.data.prefetch={prefetch!r} must be an int >= 0 (0 = two per thread)")
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch or 2 * threads)
  return iter(batches.to_iter_dataset(options))


def get_batch(ds, batch_size: int, step: int, *, seed: int, process_index: int = 0,
              process_count: int = 1) -> dict[str, np.ndarray]:
  """This process's part of global batch ``step`` (all of it on one host), without augmentation."""
  return local_batches(ds, batch_size=batch_size, seed=seed, process_index=process_index,
                       process_count=process_count)[step]


def batch_indices(n: int, batch_size: int, step: int, *, seed: int, domain_id: int = 0) -> np.ndarray:
  """Indices of the examples of global batch ``step`` in a domain of ``n`` examples (``domain_id``:
  the domain's position in sorted order if unpaired, 0 if paired)."""
  stream = index_stream(n, seed=seed, domain_id=domain_id)
  return np.asarray([stream[step * batch_size + k] for k in range(batch_size)], np.int64)
