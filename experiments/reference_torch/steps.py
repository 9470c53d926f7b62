"""One training step of ``uncoop`` and ``cyclegan`` in PyTorch, the update of the JAX methods.

``build(config, channels)`` returns a ``Run`` with ``step(batch) -> metrics`` (``batch``: NCHW
tensors ``{"v", "c"}``) and ``load_flax(state)``. The losses, weights, freezing, history buffer
(``disen_jax.history``'s rule), Adam(lr, b1, b2) with the hold-then-linear-decay schedule and the
adversaries' update (one Adam over both, real and fake in one forward, spectral-norm statistics
advanced) are those of ``disen_jax.methods.uncoop`` / ``cyclegan``; so are the metric names.
A frozen network (uncooperative mode, adversaries in the generator step) is one whose parameters
are left out of the backward pass (``backward(inputs=...)``, ``requires_grad_(False)``): it passes
gradients to its input and learns nothing, as ``grad.freeze`` does.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from experiments.reference_torch import nets


class History:
  """``disen_jax.history``: fill, then per example swap with a stored one with probability 1/2."""

  def __init__(self, size: int, shape):
    self.items = torch.zeros((size,) + tuple(shape))
    self.count = 0

  def query(self, batch):
    batch = batch.detach()
    size, n = len(self.items), len(batch)
    if size == 0:
      return batch
    fill_slot = self.count + torch.arange(n)
    fill = fill_slot < size
    swap = ~fill & (torch.rand(n) < 0.5)
    idx = torch.randint(0, size, (n,))
    out = torch.where(swap[:, None, None, None], self.items[idx], batch)
    self.items[fill_slot[fill]] = batch[fill]
    self.items[idx[swap]] = batch[swap]
    self.count = min(self.count + n, size)
    return out


def _adam(params, config):
  o = config.optim
  opt = torch.optim.Adam(params, lr=o.lr, betas=(o.b1, o.b2), eps=1e-8)
  hold = int(round(o.hold_fraction * config.num_steps))
  decay = max(config.num_steps - hold, 1)
  schedule = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda s: 1.0 if s < hold else max(0.0, 1.0 - (s - hold) / decay))
  return opt, schedule


def _lsgan_generator(fake):
  return torch.mean((fake - 1.0) ** 2)


def _lsgan_discriminator(real, fake):
  return 0.5 * (torch.mean((real - 1.0) ** 2) + torch.mean(fake ** 2))


def _l1(pred, target):
  return torch.mean(torch.abs(pred - target))


class Run:
  """Networks, optimizers and history buffers of one method; ``step`` is one training step."""

  generators: tuple[str, ...]
  adversaries: tuple[str, ...]

  def __init__(self, config, nets_: dict[str, nn.Module], shapes: dict):
    self.config = config
    self.nets = nn.ModuleDict(nets_)
    gen = [p for n in self.generators for p in self.nets[n].parameters()]
    adv = [p for n in self.adversaries for p in self.nets[n].parameters()]
    self.opt_gen, self.sched_gen = _adam(gen, config)
    self.opt_adv, self.sched_adv = _adam(adv, config)
    self.history = {d: History(config.history_size, shapes[d]) for d in ("c", "v")}

  def load_flax(self, state) -> None:
    for name, module in self.nets.items():
      nets.load_flax(module, state.params[name], state.stats.get(name))

  def _adversaries_step(self, judged: dict) -> dict:
    for n in self.adversaries:
      self.nets[n].requires_grad_(True)
    self.opt_adv.zero_grad(set_to_none=True)
    metrics = {}
    for name, (real, fake) in judged.items():
      logits = self.nets[name](torch.cat([real, fake]), update_stats=True)
      real_l, fake_l = logits.chunk(2)
      metrics["d_" + name] = _lsgan_discriminator(real_l, fake_l)
    sum(metrics.values()).backward()
    self.opt_adv.step()
    self.sched_adv.step()
    return {k: t.detach() for k, t in metrics.items()}

  def _generators_step(self, losses_fn) -> tuple[dict, dict]:
    for n in self.adversaries:
      self.nets[n].requires_grad_(False)
    self.opt_gen.zero_grad(set_to_none=True)
    metrics, fakes = losses_fn()
    self.opt_gen.step()
    self.sched_gen.step()
    return metrics, fakes

  def step(self, batch) -> dict:
    lr = self.sched_gen.get_last_lr()[0]
    metrics, fakes = self._generators_step(lambda: self.generator_losses(batch))
    judged = {name: (batch[d], self.history[d].query(fakes[d]))
              for name, d in zip(self.adversaries, ("c", "v"))}
    return {**metrics, **self._adversaries_step(judged), "lr": lr}


class CycleGAN(Run):
  generators = ("G", "F")
  adversaries = ("D_C", "D_V")

  def generator_losses(self, batch):
    """``cyclegan.generator_loss``: LSGAN + cycle + identity; backward into G and F."""
    w = self.config.loss
    G, F_, D_C, D_V = (self.nets[n] for n in ("G", "F", "D_C", "D_V"))
    v, c = batch["v"], batch["c"]
    fake_c, fake_v = G(v), F_(c)
    g_c, g_v = _lsgan_generator(D_C(fake_c)), _lsgan_generator(D_V(fake_v))
    cyc_v, cyc_c = _l1(F_(fake_c), v), _l1(G(fake_v), c)
    idt = _l1(G(c), c) + _l1(F_(v), v) if w.identity else torch.zeros(())
    total = w.gan * (g_c + g_v) + w.cycle * (cyc_v + cyc_c) + w.cycle * w.identity * idt
    total.backward()
    metrics = {"loss_gen": total, "g_c": g_c, "g_v": g_v, "cycle_v": cyc_v, "cycle_c": cyc_c,
               "identity": idt}
    return {k: t.detach() for k, t in metrics.items()}, {"c": fake_c, "v": fake_v}


class Uncoop(Run):
  generators = ("D_C", "D_R", "E")
  adversaries = ("A_C", "A_V")

  def generator_losses(self, batch):
    """``uncoop.cycle_losses`` + the gradient routing of ``uncoop.train_step``
    (``sequential=False``): uncooperative cycle 1 trains D only, cycle 2 trains E only."""
    w, n = self.config.loss, self.nets
    v, c = batch["v"], batch["c"]
    # Cycle 1: v -> D -> E.
    c1, r1 = n["D_C"](v), n["D_R"](v)
    v_rec = n["E"](c1, r1)
    l_v = _l1(v_rec, v)
    g_c = _lsgan_generator(n["A_C"](c1))
    cycle1 = w.v * l_v + w.gan * g_c
    # Cycle 2: (c, r) -> E -> D, with r the residual of the batch's real v.
    r = [t.detach() for t in r1]
    v_fake = n["E"](c, r)
    c_rec, r_rec = n["D_C"](v_fake), n["D_R"](v_fake)
    l_c = _l1(c_rec, c)
    l_r = sum(_l1(p, t) for p, t in zip(r_rec, r)) / len(r)
    g_v = _lsgan_generator(n["A_V"](v_fake))
    cycle2 = w.c * l_c + w.r * l_r + w.gan * g_v
    if self.config.sequential:
      raise NotImplementedError("config.sequential=True has no torch reference")
    if self.config.cooperative:
      (cycle1 + cycle2).backward()
    else:
      d_params = [p for k in ("D_C", "D_R") for p in n[k].parameters()]
      cycle1.backward(inputs=d_params)
      cycle2.backward(inputs=list(n["E"].parameters()))
    metrics = {"loss_gen": cycle1 + cycle2, "l_v": l_v, "l_c": l_c, "l_r": l_r, "g_c": g_c, "g_v": g_v}
    return {k: t.detach() for k, t in metrics.items()}, {"c": c1, "v": v_fake}

  def load_flax(self, state) -> None:
    """The flax disentangler holds both streams (``c_stream``, ``r_stream``)."""
    params = dict(state.params)
    d = params.pop("D")
    params.update({"D_C": d["c_stream"], "D_R": d["r_stream"], "E": params["E"]["net"]})
    super().load_flax(state.replace(params=params))


def build(config, channels: dict[str, int]) -> Run:
  """The torch ``Run`` of ``config.method`` (``uncoop`` with ``model.kind="resnet"``, or
  ``cyclegan``); ``channels`` maps each domain (``v``, ``c``) to its channel count."""
  m = config.model
  if config.method not in ("cyclegan", "uncoop") or m.get("kind", "resnet") != "resnet":
    raise ValueError(f"config.method={config.method!r} (model.kind={m.get('kind')!r}): the torch "
                     "reference covers 'cyclegan' and 'uncoop' with model.kind='resnet'")
  size = config.data.resolution
  shapes = {d: (channels[d], size, size) for d in ("v", "c")}
  translator = lambda cin, cout, **kw: nets.ResnetTranslator(cin, cout, m.features, **kw)
  if config.method == "cyclegan":
    return CycleGAN(config, {
        "G": translator(channels["v"], channels["c"], num_blocks=m.num_blocks),
        "F": translator(channels["c"], channels["v"], num_blocks=m.num_blocks),
        "D_C": nets.PatchGAN(channels["c"], m.disc_features, m.disc_layers, m.disc_norm),
        "D_V": nets.PatchGAN(channels["v"], m.disc_features, m.disc_layers, m.disc_norm),
    }, shapes)
  emit = tuple(m.r_emit_after)
  return Uncoop(config, {
      "D_C": translator(channels["v"], channels["c"], num_blocks=m.num_blocks),
      "D_R": translator(channels["v"], channels["c"], emit_after=emit),
      "E": translator(channels["c"], channels["v"], num_blocks=m.num_blocks, inject_after=emit),
      "A_C": nets.PatchGAN(channels["c"], m.disc_features, m.disc_layers),
      "A_V": nets.PatchGAN(channels["v"], m.disc_features, m.disc_layers),
  }, shapes)
