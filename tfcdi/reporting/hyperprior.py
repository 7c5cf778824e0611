"""The hyperprior follow-up (shared/papers/004): cResNet-39 on both hyperprior latents, on y_hat
alone and ResNet-50 on decoded RGB, per quality, beside the follow-up's published numbers."""

from __future__ import annotations

from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

_table = results_lib.table

# (net, input, latent_inputs) of each arm of the follow-up's comparison, in table order.
HYPERPRIOR_ARMS = (("cresnet39", "latent", "y_hat+sigma_hat"), ("cresnet39", "latent", "y_hat"),
                   ("resnet50", "decoded", None))


def _hyperprior_measured(result: dict) -> dict:
  final = result.get("final") or {}
  return {"top1": 100.0 * final["top1"] if final else None,
          "top5": 100.0 * final["top5"] if final else None,
          "complete": bool(result.get("complete")),
          "epochs_done": len(result.get("epochs", [])),
          "epochs": result["config"]["epochs"],
          "seed": results_lib.seed_of(result),
          "codec": (result.get("codec") or {}).get("name"),
          "command": result.get("command")}


def codec_quality(result: dict) -> int | None:
  """The quality of the codec a result is for: a codec result's ("quality"), or the codec of a
  classifier run's store ("codec": {"quality": ...}); None for a codec not picked by quality.

  The follow-up's table is indexed by quality, so this is what decides whether a result belongs
  in it (results JSON record the codec's selection; reporting does not ask which family).
  """
  codec = result.get("codec")  # a run's: its codec's identity; a codec result's: its name
  quality = result.get("quality", codec.get("quality") if isinstance(codec, dict) else None)
  return None if quality is None or isinstance(quality, bool) else int(quality)


def hyperprior_summary(results_files: list[str], codec_results: list[dict], paper: dict) -> dict:
  """Per hyperprior quality: its Kodak rate and quality, and top-1 / top-5 of each arm.

  Args:
    results_files: results.json files of tfcdi-train-classifier runs on hyperprior stores.
    codec_results: the hyperprior codecs' kodak_eval.json contents (tfcdi-train-codec writes
      them), measured from real files.
    paper: the published numbers; the follow-up's are on MINC-2500 / RSSCN7 / RESISC45, not
      Imagenette, and are carried as published context only.
  """
  runs = results_lib.index_runs(
      results_files, lambda r: (str(r["operating_point"]), r["net"], r["input"],
                                r.get("latent_inputs"), results_lib.seed_of(r)), "classifier")
  for run in runs.values():
    if codec_quality(run["result"]) is None:
      raise ValueError(f"{run['file']} is not a run on a hyperprior store (its codec has no "
                       f"quality: codec family {run['result'].get('codec_family')!r})")
  codecs = {}
  for result in codec_results:
    if codec_quality(result) is None:
      raise ValueError(f"codec result {result.get('codec')!r} is not a hyperprior codec's (it "
                       "has no quality)")
    codecs[f"q{codec_quality(result)}"] = result
  qualities = sorted({k[0] for k in runs} | set(codecs), key=lambda q: int(q.lstrip("q")))
  points = []
  for quality in qualities:
    codec = codecs.get(quality)
    arms = []
    for net, input_kind, latent_inputs in HYPERPRIOR_ARMS:
      arm = {"net": net, "input": input_kind, "latent_inputs": latent_inputs}
      key = (quality, net, input_kind, latent_inputs)
      seeds = sorted(k[-1] for k in runs if k[:-1] == key)
      seed_runs = [runs.pop((*key, seed)) for seed in seeds]
      if seed_runs:
        measured = [_hyperprior_measured(run["result"]) for run in seed_runs]
        arm["measured"] = seeds_lib.aggregate(measured, ("top1", "top5"))
        arm["source"] = seed_runs[0]["file"]
        if len(seed_runs) > 1:
          arm["seed_runs"] = [{**m, "source": run["file"]} for m, run in zip(measured, seed_runs)]
      arms.append(arm)
    points.append({
        "quality": quality,
        "kodak": None if codec is None else {
            k: codec[k] for k in ("bpp", "psnr", "ssim", "ms_ssim", "codec", "fingerprint",
                                  "num_images", "payload_overhead_vs_information")
            if k in codec},
        "arms": arms})
  if runs:
    raise ValueError(f"results for arms the table has no row for: {sorted(runs)}")
  followup = paper["hyperprior_followup"]
  return {"points": points,
          "published_followup": {k: v for k, v in followup.items() if not k.startswith("_")},
          "published_note": followup.get("_note")}


def hyperprior_markdown(summary: dict, title: str) -> str:
  """The hyperprior summary as Markdown, published follow-up numbers labelled as such."""
  labels = {"y_hat+sigma_hat": "two branches (y_hat, sigma_hat)", "y_hat": "y_hat alone",
            None: "decoded RGB"}
  rows = []
  for point in summary["points"]:
    kodak = point["kodak"] or {}
    for arm in point["arms"]:
      m = arm.get("measured") or {}
      state = None
      if m:
        state = "done" if m["complete"] else f"{m['epochs_done']}/{m['epochs']} epochs"
      top1, top5 = (None if m.get(k) is None else f"{m[k]:.2f}" for k in ("top1", "top5"))
      if m.get("seeds_averaged") and len(m["seeds_averaged"]) > 1:
        # "mean (lowest-highest, n seeds)": the spread is part of the number.
        low, high = m["top1_range"]
        top1 = f"{top1} ({low:.2f}-{high:.2f}, {len(m['seeds_averaged'])} seeds)"
      rows.append([point["quality"], kodak.get("bpp"), kodak.get("ms_ssim"),
                   f"{arm['net']}, {labels[arm['latent_inputs']]}", top1, top5, state])
  published = summary["published_followup"]
  pub_rows = []
  for name, values in published.items():
    top1 = values.get("top1", values) if isinstance(values, dict) else None
    if isinstance(top1, dict):
      pub_rows.append([name] + [top1.get(q) for q in ("1", "4", "8")])
  lines = [f"# {title}", "",
           "Measured here: each hyperprior quality's mean rate and MS-SSIM on Kodak from real "
           ".tfci files, and top-1 / top-5 (percent) on the Imagenette validation split of "
           "cResNet-39 on both latents (the follow-up's two-branch net), on y_hat alone (its "
           "ablation) and ResNet-50 on the decoded images.", "",
           _table(["quality", "Kodak bpp", "Kodak MS-SSIM", "arm", "top-1", "top-5", "state"],
                  [[c if not isinstance(c, float) else round(c, 4) for c in row]
                   for row in rows]), ""]
  if pub_rows:
    lines += ["Published (the follow-up and the work it reproduces; other datasets, top-1 of "
              "the two-branch net per quality):", "",
              _table(["published result", "quality 1", "quality 4", "quality 8"], pub_rows), ""]
    if summary.get("published_note"):
      lines += [f"({summary['published_note']})", ""]
  missing = [f"{arm['net']}, {labels[arm['latent_inputs']]} at {point['quality']}"
             for point in summary["points"] for arm in point["arms"]
             if not (arm.get("measured") or {}).get("complete")]
  missing += [f"Kodak evaluation of {p['quality']}" for p in summary["points"] if not p["kodak"]]
  if missing:
    lines += ["## Not measured (or not finished) yet", "", *(f"- {m}" for m in missing), ""]
  return "\n".join(lines)
