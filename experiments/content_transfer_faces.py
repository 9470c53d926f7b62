"""Press et al. (ICLR 2019) content transfer on procedural faces without / with glasses, scored
against exact renders (``evaluation.faces_glasses``).

Trains ``configs/content_transfer_faces.py:<--variant>`` (default ``cpu``) with the library's
engine in ``--workdir`` (rerunning resumes), then writes to ``--out``:

* ``results.json``: the four measures, ``{"transfer": {"psnr", "ssim", "psnr_copy", "ssim_copy"},
  "removal": {...}, "removal_p_glasses": .., "transfer_p_glasses": .., "glasses_accuracy": ..,
  "identity_r2": {"transfer", "removal", "renders"}, "reconstruction_psnr": {"a", "b"},
  "aims": {...}, "paper": {...}, "steps": .., "seconds_this_invocation": .., "note": ..}``;
* ``results.md``: the tables, the paper's numbers beside ours;
* ``transfer_removal.png``: a, the reference b, a with b's glasses, its exact target | b, b
  without glasses, its exact target (one face per row).

  python experiments/content_transfer_faces.py --out=experiments/results/content_transfer_faces
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import content_transfer_faces  # pylint: disable=g-import-not-at-top
from disen_jax import train  # pylint: disable=g-import-not-at-top

OUT = flags.DEFINE_string("out", "experiments/results/content_transfer_faces", "where results go")
WORKDIR = flags.DEFINE_string("workdir", "runs/content_transfer_faces", "the run (rerunning resumes)")
VARIANT = flags.DEFINE_string("variant", "cpu", "config variant ('' = the paper's setting)")
STEPS = flags.DEFINE_integer("steps", 0, "train this many steps instead of the config's (0: the config's)")
NOTE = flags.DEFINE_string("note", "", "how the run went (budget, interruptions), for results.md")

# Press et al. 2019, Table 4: mean probability of "glasses" a classifier gives to removed CelebA faces.
PAPER = {"removal_p_glasses": {"content_transfer": 0.011, "fader_networks": 0.066}}


def main(argv):
  del argv
  config = content_transfer_faces.get_config(VARIANT.value or None)
  if STEPS.value:
    config.num_steps = config.eval_every = config.checkpoint_every = STEPS.value
  start = time.time()
  _, final = train.train_and_evaluate(config, WORKDIR.value)
  seconds = time.time() - start
  os.makedirs(OUT.value, exist_ok=True)
  pick = lambda prefix: {k[len(prefix) + 1:] or "value": float(v) for k, v in final.items()
                         if k.startswith(prefix + "_")}
  results = {
      "transfer": pick("transfer"), "removal": pick("removal"),
      "identity_r2": pick("identity_r2"), "reconstruction_psnr": pick("reconstruction_psnr"),
  }
  for name in ("transfer", "removal"):  # the probabilities get their own keys
    results[f"{name}_p_glasses"] = results[name].pop("p_glasses")
  results["glasses_accuracy"] = float(final["glasses_accuracy"])
  results["aims"] = {
      "removal_p_glasses_at_most_0.05": results["removal_p_glasses"] <= 0.05,
      "transfer_psnr_above_copy": results["transfer"]["psnr"] > results["transfer"]["psnr_copy"]}
  results.update(paper=PAPER, variant=VARIANT.value, steps=config.num_steps,
                 batch_size=config.batch_size, resolution=config.data.resolution,
                 render=config.data.render, model=config.model.to_dict(),
                 seconds_this_invocation=round(seconds, 1), note=NOTE.value)
  with open(os.path.join(OUT.value, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  figure = os.path.join(WORKDIR.value, "samples", f"glasses_{config.num_steps:08d}.png")
  if os.path.exists(figure):
    shutil.copy(figure, os.path.join(OUT.value, "transfer_removal.png"))
  with open(os.path.join(OUT.value, "results.md"), "w") as f:
    f.write("\n".join(markdown(results)) + "\n")
  print(json.dumps(results, indent=2, sort_keys=True))


def markdown(r: dict) -> list[str]:
  t, rm, ids, rec = r["transfer"], r["removal"], r["identity_r2"], r["reconstruction_psnr"]
  yes = lambda ok: "met" if ok else "**not met**"
  return [
      "# Content transfer (Press et al., ICLR 2019) on procedural faces with / without glasses", "",
      f"`python experiments/content_transfer_faces.py --variant={r['variant']}`: "
      f"{r['steps']} steps of batch {r['batch_size']} at {r['resolution']} px "
      f"(renders `{r['render']}`), model `{r['model']}`. {r['note']}", "",
      "| measure | ours | copy baseline (input unchanged) | paper |", "|---|---|---|---|",
      f"| (1) transfer PSNR / SSIM vs exact render of a with glasses | {t['psnr']:.2f} / {t['ssim']:.3f} "
      f"| {t['psnr_copy']:.2f} / {t['ssim_copy']:.3f} | - |",
      f"| (2) removal PSNR / SSIM vs exact render of b without glasses | {rm['psnr']:.2f} / {rm['ssim']:.3f} "
      f"| {rm['psnr_copy']:.2f} / {rm['ssim_copy']:.3f} | - |",
      f"| (3) mean P(glasses) of removed images | {r['removal_p_glasses']:.3f} | - | 0.011 (Fader networks 0.066), CelebA |",
      f"| P(glasses) of transfers | {r['transfer_p_glasses']:.3f} | - | - |",
      f"| (4) identity R^2, transfer / removal (ceiling on exact renders) | {ids['transfer']:.3f} / "
      f"{ids['removal']:.3f} ({ids['renders']:.3f}) | - | - |",
      f"| auto-encoder reconstruction PSNR, a / b | {rec.get('a', float('nan')):.2f} / {rec.get('b', float('nan')):.2f} | - | - |",
      f"| glasses classifier accuracy on real test faces | {r['glasses_accuracy']:.3f} | - | - |", "",
      f"Aims: removal P(glasses) <= 0.05: {yes(r['aims']['removal_p_glasses_at_most_0.05'])}; "
      f"transfer PSNR above the copy baseline: {yes(r['aims']['transfer_psnr_above_copy'])}.", "",
      "![a, reference b, transfer, exact target | b, removal, exact target](transfer_removal.png)", ""]


if __name__ == "__main__":
  app.run(main)
