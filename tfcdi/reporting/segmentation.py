"""Table 2's mIoU column: each segmentation arm (mean over its seeds) beside the published PASCAL
VOC numbers, the latent-vs-decoded gap per operating point, and the runs the Fig. 5 analog
draws."""

from __future__ import annotations

import os

from tfcdi.codec import operating_points
from tfcdi.reporting import classification
from tfcdi.reporting import published as published_lib
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

# Table 2's mIoU column has the same rows as its classification columns; the nets are the
# dilated "-d" variants of the same backbones.
SEGMENTATION_ARMS = classification.CLASSIFICATION_ARMS
# The paper's headline comparison per operating point: segmenting from the representation
# (cResNet-51-d) against segmenting from decoded RGB (ResNet-50-d).
SEGMENTATION_PAIR = (("cresnet51", "latent"), ("resnet50", "decoded"))
FIG5_FILE = "fig5_masks.png"


def _measured(result: dict) -> dict:
  config = result["config"]
  num_steps = config["num_steps"]
  return {
      "miou": 100.0 * result["miou"] if "miou" in result else None,
      "pixel_accuracy": (100.0 * result["pixel_accuracy"] if "pixel_accuracy" in result
                         else None),
      "seed": results_lib.seed_of(result),
      "steps": result.get("steps", 0), "num_steps": num_steps,
      "complete": result.get("steps") == num_steps,
      "dataset": result.get("dataset"), "eval_split": result.get("eval_split"),
      "eval_images": result.get("eval_images"),
      "width_multiplier": config.get("width_multiplier"),
      "init_from": result.get("init_from"),
      "multiply_adds_per_crop": result.get("multiply_adds_per_crop"),
      "crop": result.get("crop"),
      "seconds_per_step": result.get("seconds_per_step"),
      "codec": (result.get("codec") or {}).get("name"),
      "codec_fingerprint": (result.get("codec") or {}).get("fingerprint"),
      "command": result.get("command"),
  }


def segmentation_summary(results_files: list[str], paper: dict) -> dict:
  """Measured mIoU per arm beside Table 2's (published, PASCAL VOC), and latent-vs-decoded gaps.

  Args:
    results_files: results.json files written by tfcdi-train-segmenter; several seeds of an arm
      (config.seed) are averaged into its row.
    paper: the published numbers (load_paper_numbers()).
  """
  runs = results_lib.index_runs(
      results_files,
      lambda r: (r.get("operating_point") or "original", r["net"].removesuffix("-d"), r["input"],
                 results_lib.seed_of(r)),
      "segmenter")
  rows = []
  for op_name, net, input_kind, seed_runs, paper_row in classification.table2_arms(
      results_lib.group_seeds(runs), SEGMENTATION_ARMS, published_lib.published_table2(paper)):
    row = {"operating_point": op_name, "net": f"{net}-d", "input": input_kind,
           "published_voc_miou": None if paper_row is None else paper_row["miou"]}
    if seed_runs:
      measured = [_measured(run["result"]) for run in seed_runs]
      row["measured"] = seeds_lib.aggregate(measured, ("miou", "pixel_accuracy"))
      row["source"] = seed_runs[0]["file"]
      if len(seed_runs) > 1:
        row["seed_runs"] = [{"seed": m["seed"], "miou": m["miou"], "complete": m["complete"],
                             "source": run["file"]} for m, run in zip(measured, seed_runs)]
    rows.append(row)
  gaps = []
  (latent_net, latent_in), (rgb_net, rgb_in) = SEGMENTATION_PAIR
  for op_name in operating_points.OPERATING_POINTS:
    by_arm = {(r["net"], r["input"]): r for r in rows if r["operating_point"] == op_name}
    latent = by_arm.get((f"{latent_net}-d", latent_in), {})
    rgb = by_arm.get((f"{rgb_net}-d", rgb_in), {})
    measured = spread = None
    seeds = []
    if (latent.get("measured") or {}).get("complete") and (rgb.get("measured") or {}).get(
        "complete"):
      measured = latent["measured"]["miou"] - rgb["measured"]["miou"]
      spread = seeds_lib.gap_spread(latent["measured"], rgb["measured"], metric="miou")
      seeds = [seeds_lib.num_seeds(latent["measured"]), seeds_lib.num_seeds(rgb["measured"])]
    published_gap = None
    if latent.get("published_voc_miou") is not None and rgb.get("published_voc_miou") is not None:
      published_gap = latent["published_voc_miou"] - rgb["published_voc_miou"]
    gaps.append({
        "operating_point": op_name,
        "comparison": f"{latent_net}-d on the latent minus {rgb_net}-d on decoded RGB (mIoU "
                      "points)",
        "measured": measured, "measured_direction": results_lib.direction(measured),
        "seed_spread": spread, "seeds": seeds,
        "published_voc": published_gap,
        "published_direction": results_lib.direction(published_gap),
        "same_direction": (None if measured is None or published_gap is None
                           else results_lib.direction(measured)
                           == results_lib.direction(published_gap)),
    })
  return {"rows": rows, "latent_vs_decoded": gaps}


def segmentation_markdown(summary: dict, title: str) -> str:
  """The summary as Markdown: mIoU per arm beside the published PASCAL VOC numbers."""
  rows = []
  for r in summary["rows"]:
    m = r.get("measured") or {}
    state = None
    if m:
      state = "done" if m["complete"] else f"{m['steps']}/{m['num_steps']} steps"
    rows.append([r["operating_point"], r["net"], r["input"], seeds_lib.cell(m, "miou"),
                 seeds_lib.cell(m, "pixel_accuracy"), m.get("num_seeds"), state,
                 m.get("seconds_per_step"), r.get("published_voc_miou")])
  dataset = next((r["measured"]["dataset"] for r in summary["rows"] if r.get("measured")), None)
  lines = [f"# {title}", "",
           f"Measured: mIoU and pixel accuracy (percent) on the full validation images of "
           f"{dataset or 'the dataset'}, ignore label excluded, after the last step; an arm run "
           "with several seeds shows the mean of its finished seeds with their range "
           "(lowest-highest). Published: the paper's Table 2 on PASCAL VOC 2012 val (21 "
           "classes, full-width nets initialised from ImageNet classifiers), labelled "
           "*published*; compare the gaps between arms, not the values.", "",
           results_lib.table(["bpp", "net", "input", "mIoU", "pixel acc.", "seeds", "state",
                              "s/step", "mIoU (published, VOC)"],
                             [[c if not isinstance(c, float) else f"{c:.2f}" for c in row]
                              for row in rows]), ""]
  gap_rows = [[g["operating_point"], g["measured"], g.get("seed_spread"), g["measured_direction"],
               g["published_voc"], g["published_direction"], g["same_direction"]]
              for g in summary["latent_vs_decoded"]]
  if any(g["measured"] is not None or g["published_voc"] is not None
         for g in summary["latent_vs_decoded"]):
    lines += ["## From the representation vs from decoded RGB", "",
              "cResNet-51-d on the latent minus ResNet-50-d on the decoded image, in mIoU points "
              "(the paper's Section 5 claim: the representation wins at the lowest rate); seed "
              "spread: the larger seed range of the two arms ('—' with one seed).", "",
              results_lib.table(["bpp", "measured", "seed spread", "direction", "published (VOC)",
                                 "published direction", "same direction"],
                                [[c if not isinstance(c, float) else f"{c:+.2f}" for c in row]
                                 for row in gap_rows]), ""]
  missing = [f"{r['net']} on the original images" if r["input"] == "original" else
             f"{r['net']} on {r['input']} at {r['operating_point']}" for r in summary["rows"]
             if not (r.get("measured") or {}).get("complete")]
  if missing:
    lines += ["## Not measured (or not finished) yet", "", *(f"- {m}" for m in missing), ""]
  return "\n".join(lines)


def segmentation_figure_runs(summary: dict, prediction_file) -> list[tuple[str, str, str]]:
  """(label, decoded predictions.npz, latent predictions.npz) per point with both arms done.

  `prediction_file(row)` maps a summary row to its predictions.npz (or None if absent).
  """
  (latent_net, latent_in), (rgb_net, rgb_in) = SEGMENTATION_PAIR
  runs = []
  for op_name in operating_points.OPERATING_POINTS:
    by_arm = {(r["net"], r["input"]): r for r in summary["rows"]
              if r["operating_point"] == op_name and (r.get("measured") or {}).get("complete")}
    latent = by_arm.get((f"{latent_net}-d", latent_in))
    rgb = by_arm.get((f"{rgb_net}-d", rgb_in))
    if latent and rgb:
      paths = prediction_file(rgb), prediction_file(latent)
      if all(p and os.path.exists(p) for p in paths):
        runs.append((f"{op_name} bpp", *paths))
  return runs
