"""The hyperprior follow-up (shared/papers/004): cResNet-39 on both hyperprior latents, on y_hat
alone and ResNet-50 on decoded RGB, per quality and per distortion the codec was trained for
(MSE, or MS-SSIM as the follow-up's codecs were), beside the follow-up's published numbers.

Where a quality has results of both distortions, the summary puts them side by side: each arm's
top-1 under each codec, and the gaps between the arms (the follow-up's conclusions) under each,
so that whether the metric changes a conclusion is read off measured numbers."""

from __future__ import annotations

from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

_table = results_lib.table

# (net, input, latent_inputs) of each arm of the follow-up's comparison, in table order.
HYPERPRIOR_ARMS = (("cresnet39", "latent", "y_hat+sigma_hat"), ("cresnet39", "latent", "y_hat"),
                   ("resnet50", "decoded", None))
# The distortions a hyperprior codec is trained for (tfcdi/codec/qualities.py; the reporting
# layer imports no TensorFlow, so the names are repeated here), in table order.
DISTORTIONS = ("mse", "ms-ssim")
_DISTORTION_LABELS = {"mse": "MSE", "ms-ssim": "MS-SSIM"}
# The gaps between arms that carry the follow-up's conclusions: (name, arm, minus arm).
_GAPS = (("two branches - decoded RGB", 0, 2), ("y_hat alone - decoded RGB", 1, 2),
         ("two branches - y_hat alone", 0, 1))


def distortion_of(result: dict) -> str:
  """What the codec behind a result was trained for: a codec result's own field, a classifier
  result's codec identity; results from before the field are of MSE codecs."""
  codec = result.get("codec")
  value = (codec.get("distortion") if isinstance(codec, dict) else result.get("distortion"))
  value = value or "mse"
  if value not in DISTORTIONS:
    raise ValueError(f"unknown distortion {value!r} in a result of codec "
                     f"{codec if isinstance(codec, str) else (codec or {}).get('name')!r}")
  return value


def file_tag(result: dict) -> str:
  """What a committed copy's file name adds for the codec's distortion: "" for MSE (the
  names of the first runs stay), "_msssim" for MS-SSIM."""
  return "" if distortion_of(result) == "mse" else "_msssim"


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
      results_files, lambda r: (str(r["operating_point"]), distortion_of(r), r["net"],
                                r["input"], r.get("latent_inputs"), results_lib.seed_of(r)),
      "classifier")
  for run in runs.values():
    if codec_quality(run["result"]) is None:
      raise ValueError(f"{run['file']} is not a run on a hyperprior store (its codec has no "
                       f"quality: codec family {run['result'].get('codec_family')!r})")
  codecs = {}
  for result in codec_results:
    if codec_quality(result) is None:
      raise ValueError(f"codec result {result.get('codec')!r} is not a hyperprior codec's (it "
                       "has no quality)")
    codecs[(f"q{codec_quality(result)}", distortion_of(result))] = result
  keys = sorted({k[:2] for k in runs} | set(codecs),
                key=lambda k: (int(k[0].lstrip("q")), DISTORTIONS.index(k[1])))
  points = []
  for quality, distortion in keys:
    codec = codecs.get((quality, distortion))
    arms = []
    for net, input_kind, latent_inputs in HYPERPRIOR_ARMS:
      arm = {"net": net, "input": input_kind, "latent_inputs": latent_inputs}
      key = (quality, distortion, net, input_kind, latent_inputs)
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
        "distortion": distortion,
        "kodak": None if codec is None else {
            k: codec[k] for k in ("bpp", "psnr", "ssim", "ms_ssim", "codec", "fingerprint",
                                  "num_images", "payload_overhead_vs_information")
            if k in codec},
        "arms": arms})
  if runs:
    raise ValueError(f"results for arms the table has no row for: {sorted(runs)}")
  followup = paper["hyperprior_followup"]
  return {"points": points,
          "by_distortion": _side_by_side(points),
          "published_followup": {k: v for k, v in followup.items() if not k.startswith("_")},
          "published_note": followup.get("_note")}


def _top1(arm: dict):
  m = arm.get("measured") or {}
  return m.get("top1") if m.get("complete") else None


def _same_sign(first, second):
  """Does a gap point the same way under both codecs? True / False; INCONCLUSIVE when either
  gap lies inside its seed spread; None when either is not measured."""
  if first is None or second is None:
    return None
  if seeds_lib.INCONCLUSIVE in (first, second):
    return seeds_lib.INCONCLUSIVE
  return first == second


def _side_by_side(points: list) -> list:
  """Per quality with points of both distortions: each arm's finished top-1 under each codec
  and the difference, and the gaps between arms under each (None where an arm is missing)."""
  by_quality = {}
  for point in points:
    by_quality.setdefault(point["quality"], {})[point["distortion"]] = point
  rows = []
  for quality, pair in by_quality.items():
    if set(pair) != set(DISTORTIONS):
      continue
    mse, ms_ssim = pair["mse"], pair["ms-ssim"]
    arms = []
    for a, b in zip(mse["arms"], ms_ssim["arms"]):
      top1 = {"mse": _top1(a), "ms-ssim": _top1(b)}
      arms.append({"net": a["net"], "input": a["input"], "latent_inputs": a["latent_inputs"],
                   "top1": top1, "difference": None if None in top1.values()
                   else top1["ms-ssim"] - top1["mse"]})
    gaps = []
    for name, first, second in _GAPS:
      values, spreads, signs = {}, {}, {}
      for distortion, point in pair.items():
        a, b = point["arms"][first], point["arms"][second]
        x, y = _top1(a), _top1(b)
        values[distortion] = None if x is None or y is None else x - y
        spreads[distortion] = (None if values[distortion] is None else seeds_lib.gap_spread(
            a.get("measured"), b.get("measured"), metric="top1"))
        # The gap's sign under the report's spread rule: True (positive), False, INCONCLUSIVE.
        signs[distortion] = seeds_lib.decide(values[distortion], 0.0, spreads[distortion],
                                             strict=True)
      gaps.append({"gap": name, "top1": values, "seed_spread": spreads,
                   "same_sign": _same_sign(signs["mse"], signs["ms-ssim"])})
    rows.append({"quality": quality,
                 "kodak": {d: pair[d]["kodak"] for d in DISTORTIONS},
                 "arms": arms, "gaps": gaps})
  return rows


def _side_by_side_markdown(rows: list, labels: dict) -> list:
  def num(v, signed=False):
    return "" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")

  arm_rows, gap_rows, rate_notes = [], [], []
  for row in rows:
    kodak = {d: row["kodak"][d] or {} for d in DISTORTIONS}
    rate = " / ".join("" if kodak[d].get("bpp") is None else f"{kodak[d]['bpp']:.3f}"
                      for d in DISTORTIONS)
    for arm in row["arms"]:
      arm_rows.append([row["quality"], rate, f"{arm['net']}, {labels[arm['latent_inputs']]}",
                       num(arm["top1"]["mse"]), num(arm["top1"]["ms-ssim"]),
                       num(arm["difference"], signed=True)])
    for gap in row["gaps"]:
      same = {True: "yes", False: "no", None: "not measured",
              seeds_lib.INCONCLUSIVE: "inside the seed spread"}[gap["same_sign"]]

      def cell(d, gap=gap):
        spread = gap["seed_spread"][d]
        text = num(gap["top1"][d], True)
        return text if spread is None else f"{text} (spread {spread:.2f})"

      gap_rows.append([row["quality"], gap["gap"], cell("mse"), cell("ms-ssim"), same])
    rates = [kodak[d].get("bpp") for d in DISTORTIONS]
    if None not in rates:
      rate_notes.append(f"{row['quality']}: the MS-SSIM codec codes Kodak at "
                        f"{rates[1] / rates[0]:.2f}x the MSE codec's rate ({rates[1]:.3f} vs "
                        f"{rates[0]:.3f} bpp)")
  lines = [
      "## MSE and MS-SSIM codecs side by side", "",
      "Top-1 (percent, finished runs, the mean of an arm's seeds) of each arm on the store of "
      "each codec of a quality: the MSE codec and the MS-SSIM one (the follow-up's metric). "
      "Kodak bpp from real files, MSE / MS-SSIM codec.", "",
      results_lib.table(["quality", "Kodak bpp", "arm", "MSE codec", "MS-SSIM codec",
                         "MS-SSIM - MSE"], arm_rows), "",
      "The follow-up's conclusions are gaps between arms; the same gap under each codec, and "
      "whether it points the same way:", "",
      results_lib.table(["quality", "top-1 gap", "MSE codec", "MS-SSIM codec", "same sign"],
                        gap_rows), "",
      "A gap's spread is the larger of its two arms' seed ranges; a gap within its spread of "
      "zero has no measured sign (the report's spread rule), and neither has the comparison.",
      ""]
  if rate_notes:
    lines += ["The two codecs of a quality share its index, not its rate, so an arm's "
              "difference between them mixes the metric with the rate: "
              + "; ".join(rate_notes) + ".", ""]
  return lines


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
      rows.append([point["quality"], _DISTORTION_LABELS[point["distortion"]],
                   kodak.get("bpp"), kodak.get("ms_ssim"),
                   f"{arm['net']}, {labels[arm['latent_inputs']]}", top1, top5, state])
  published = summary["published_followup"]
  pub_rows = []
  for name, values in published.items():
    top1 = values.get("top1", values) if isinstance(values, dict) else None
    if isinstance(top1, dict):
      pub_rows.append([name] + [top1.get(q) for q in ("1", "4", "8")])
  lines = [f"# {title}", "",
           "Measured here: each hyperprior codec's mean rate and MS-SSIM on Kodak from real "
           ".tfci files, and top-1 / top-5 (percent) on the Imagenette validation split of "
           "cResNet-39 on both latents (the follow-up's two-branch net), on y_hat alone (its "
           "ablation) and ResNet-50 on the decoded images. \"trained for\": the codec's "
           "distortion (MSE, or MS-SSIM as the follow-up's codecs).", "",
           _table(["quality", "trained for", "Kodak bpp", "Kodak MS-SSIM", "arm", "top-1",
                   "top-5", "state"],
                  [[c if not isinstance(c, float) else round(c, 4) for c in row]
                   for row in rows]), ""]
  if summary.get("by_distortion"):
    lines += _side_by_side_markdown(summary["by_distortion"], labels)
  if pub_rows:
    lines += ["Published (the follow-up and the work it reproduces; other datasets, top-1 of "
              "the two-branch net per quality):", "",
              _table(["published result", "quality 1", "quality 4", "quality 8"], pub_rows), ""]
    if summary.get("published_note"):
      lines += [f"({summary['published_note']})", ""]
  def codec_label(point):
    return point["quality"] + ("" if point["distortion"] == "mse" else " (MS-SSIM codec)")

  missing = [f"{arm['net']}, {labels[arm['latent_inputs']]} at {codec_label(point)}"
             for point in summary["points"] for arm in point["arms"]
             if not (arm.get("measured") or {}).get("complete")]
  missing += [f"Kodak evaluation of {codec_label(p)}" for p in summary["points"]
              if not p["kodak"]]
  measured_qualities = {p["quality"] for p in summary["points"]}
  with_ms_ssim = {p["quality"] for p in summary["points"] if p["distortion"] == "ms-ssim"}
  missing += [f"the MS-SSIM codec of {q} (the follow-up's metric; tfcdi-train-codec "
              f"--recipe=hp-{q}-msssim-cpu) and its arms"
              for q in sorted(measured_qualities - with_ms_ssim, key=lambda q: int(q[1:]))]
  if missing:
    lines += ["## Not measured (or not finished) yet", "", *(f"- {m}" for m in missing), ""]
  return "\n".join(lines)
