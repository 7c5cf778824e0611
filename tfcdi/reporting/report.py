"""The reproduction report: measured numbers beside the published ones, from JSON files only.

Inputs are the JSON results the pipeline's steps wrote under a workdir (see tfcdi/reproduce.py;
a workdir restored from the committed reports/ holds the committed copies, seed runs and the
storage measurement included) and ../shared/reference/paper_numbers.json (the only source of
published numbers). Output: report.md, report.json (everything the tables show, with the file
each number came from) and the figures, copied or drawn next to them.

The tables' logic lives beside this module (classification, segmentation, joint, hyperprior,
storage); the claims are checked last, on everything the sections put into report.json.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

from tfcdi.codec import operating_points
from tfcdi.reporting import claims as claims_lib
from tfcdi.reporting import classification
from tfcdi.reporting import joint
from tfcdi.reporting import published as published_lib
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import segmentation
from tfcdi.reporting import storage
from tfcdi.reporting import width

# Written by the pipeline (tfcdi.nets.arm_costs) before it renders: each classification arm's
# multiply-adds at the width it was trained, for the Fig. 6 analog.
ARM_COSTS_FILE = os.path.join("flops", "arms.json")
# Restored from the committed classification table: the sizes of stores made elsewhere.
STORE_SIZES = "store_sizes"

_table = results_lib.table


def codec_section(workdir: str, paper: dict, data: dict) -> list[str]:
  """Operating points measured on Kodak from real files, with JPEG / JPEG 2000 at that bpp."""
  rd = results_lib.read_json(os.path.join(workdir, "rd", "rd_curve.json"))
  compare = {c["operating_point"]: c for c in (rd or {}).get("learned", [])}
  rows, records = [], []
  for op_name, op in operating_points.OPERATING_POINTS.items():
    source = os.path.join("codecs", op_name, "kodak_eval.json")
    result = results_lib.read_json(os.path.join(workdir, source))
    if result is None:
      rows.append([op_name, op.channels] + [None] * 9)
      continue
    c = compare.get(op_name, {})
    jpeg = c.get("baselines", {}).get("jpeg", {})
    jp2 = c.get("baselines", {}).get("jpeg2000", {})
    within = abs(result["bpp"] / op.bpp - 1.0) <= 0.15
    rows.append([op_name, op.channels, result["bpp"], within, result["psnr"], result["ssim"],
                 result["ms_ssim"], jpeg.get("ms_ssim"), jp2.get("ms_ssim"),
                 jpeg.get("learned_better", {}).get("ms_ssim"),
                 jp2.get("learned_better", {}).get("ms_ssim")])
    measured = {k: v for k, v in result.items() if k != "images"}
    records.append({"operating_point": op_name, "published_bpp": op.bpp, "measured": measured,
                    "source": source, "baselines_at_same_bpp": c.get("baselines")})
  data["codec"] = records
  lines = [
      "## Codec operating points (Section 3.1, Fig. 8 analog)",
      "",
      "Measured on Kodak from real `.tfci` files (whole file, header included). The published "
      "operating points are the target bpp of each row (paper: measured on ImageNet validation "
      "images). JPEG and JPEG 2000 columns are their MS-SSIM at the same bpp, interpolated on "
      "their measured Kodak curves; '—' where the curve does not reach that rate.",
      "",
      _table(["target bpp (published)", "C", "measured bpp", "within 15%", "PSNR", "SSIM", "MS-SSIM",
              "JPEG MS-SSIM", "JPEG 2000 MS-SSIM", "beats JPEG", "beats JPEG 2000"], rows),
      "",
  ]
  if rd:
    lines += [f"JPEG's lowest mean rate on these images: {rd['lowest_bpp'].get('jpeg', 0):.4f} "
              "bpp.", "", "![rate-distortion](rd_curve.png)", ""]
  return lines


def flops_section(workdir: str, data: dict) -> list[str]:
  table = results_lib.read_json(os.path.join(workdir, "flops", "flops.json"))
  if table is None:
    return []
  data["flops"] = {"source": "flops/flops.json", **table}
  rows = [[r["model"], r["measured_1e9"], r.get("published_1e9"),
           None if r.get("relative_difference") is None else f"{r['relative_difference']:+.2%}",
           r.get("within_1pct")] for r in table["rows"]]
  return ["## Table 1: multiply-adds (x1e9)", "",
          "Counted from the built Keras graphs (224x224 RGB; 28x28xC latent); published values "
          "from the paper.", "",
          _table(["net", "measured", "published (paper)", "difference", "within 1%"], rows), ""]


def classification_section(workdir: str, paper: dict, data: dict, out_dir: str,
                           dataset: str = "Imagenette") -> list[str]:
  """Table 2's classification columns from the pipeline's classifier runs (every seed) and
  stores."""
  files = sorted(glob.glob(os.path.join(workdir, "classification", "*", "results.json")))
  stores = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(workdir, "stores", "*",
                                                                     "metadata.json")))
  # Sizes of stores not on this machine, as the committed table recorded them (restore).
  here = {os.path.basename(s) for s in stores}
  recorded = [{**results_lib.read_json(p), "source": os.path.relpath(p, workdir)}
              for p in sorted(glob.glob(os.path.join(workdir, STORE_SIZES, "*.json")))
              if os.path.splitext(os.path.basename(p))[0] not in here]
  if not files and not stores and not recorded:
    return []
  summary = classification.classification_summary(files, stores, paper, recorded)
  classification.relative_sources(summary, workdir)
  for store in summary["stores"]:
    if os.path.isabs(store["store_dir"]):
      store["store_dir"] = os.path.relpath(store["store_dir"], workdir)
  data["classification"] = summary
  data["classification_dataset"] = dataset
  text = classification.classification_markdown(summary, f"Table 2: classification ({dataset})")
  return results_lib.demote_headings(text) + classification_figures(summary, out_dir)


def classification_figures(summary: dict, out_dir: str) -> list[str]:
  """Fig. 3's analogs (accuracy per point, top-5 and top-1; validation curves) as Markdown."""
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  lines = []
  for metric in ("top5", "top1"):  # the paper's Fig. 3 is top-5; on 10 classes top-1 says more
    written = paper_figures.fig3_top5_per_operating_point(
        summary, os.path.join(out_dir, f"fig3_{metric}.png"), metric)
    if written:
      lines.append(f"![Fig. 3 analog, {metric}]({os.path.basename(written)})")
  curves = paper_figures.fig3_validation_curves(
      summary, os.path.join(out_dir, "fig3_validation_curves.png"))
  if curves:
    lines += ["", "Validation top-5 after each epoch (the paper's Fig. 3 draws these curves; "
              "per-epoch values are on the run's evaluation subset, the table's on the whole "
              "split; seed 0 where an arm has several):", "",
              "![Fig. 3 analog, validation curves](fig3_validation_curves.png)"]
  return lines + [""]


def width_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """The width study (tools/width_table.py): its runs at other widths (workdir/width, restored
  from the committed ones) beside the preset's own classification runs."""
  study = sorted(glob.glob(os.path.join(workdir, "width", "*", "results.json")))
  if not study:
    return []
  files = study + sorted(glob.glob(os.path.join(workdir, "classification", "*", "results.json")))
  summary = width.width_summary(files, paper)
  width.relative_sources(summary, workdir)
  data["width"] = summary
  written = width.width_figure(summary, os.path.join(out_dir, "width_gap.png"))
  text = width.width_markdown(summary, "The width study: decoded RGB against the representation")
  return (results_lib.demote_headings(text)
          + ([f"![the width study]({os.path.basename(written)})"] if written else []) + [""])


def storage_section(workdir: str, data: dict) -> list[str]:
  """The storage measurements on full-size photos (storage/*.json) beside the latent store."""
  found = storage.read_measurements(sorted(glob.glob(os.path.join(workdir, "storage",
                                                                  "*.json"))), workdir)
  if not found:
    return []
  data["storage"] = found
  return results_lib.demote_headings(storage.storage_markdown(
      found, (data.get("classification") or {}).get("stores", []),
      (data.get("classification") or {}).get("published_storage_imagenet_gb")))


def joint_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """Section 6 (Figs. 7 and 11) from the pipeline's joint-training runs (every seed)."""
  files = sorted(glob.glob(os.path.join(workdir, "joint", "*", "results.json")))
  if not files:
    return []
  summary = joint.joint_summary(files, paper, joint.joint_segmentation_files(
      os.path.join(workdir, "joint", "seg")))
  for point in summary["points"]:
    joint.relative_sources(point, workdir)
  data["joint"] = summary
  from tfcdi.reporting import figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  written = figures.joint_figures(summary, out_dir)
  text = joint.joint_markdown(summary, "Section 6: joint training (Figs. 7 and 11)",
                              (data.get("classification") or {}).get("rows", []))
  return (results_lib.demote_headings(text)
          + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in written] + [""])


def segmentation_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """Table 2's mIoU column and the Fig. 5 analog from the pipeline's segmenter runs."""
  files = sorted(glob.glob(os.path.join(workdir, "segmentation", "*", "results.json")))
  if not files:
    return []
  summary = segmentation.segmentation_summary(files, paper)
  written = write_segmentation_figure(summary, out_dir)
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  fig4 = paper_figures.fig4_miou_per_operating_point(summary,
                                                     os.path.join(out_dir, "fig4_miou.png"))
  written += [fig4] if fig4 else []
  classification.relative_sources(summary, workdir)
  data["segmentation"] = summary
  text = segmentation.segmentation_markdown(summary, "Table 2: segmentation")
  return (results_lib.demote_headings(text)
          + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in written] + [""])


def write_segmentation_figure(summary: dict, out_dir: str) -> list[str]:
  """The Fig. 5 analog from the predictions.npz beside each row's results.json (if any)."""
  runs = segmentation.segmentation_figure_runs(
      summary, lambda row: os.path.join(os.path.dirname(row["source"]), "predictions.npz"))
  if not runs:
    return []
  from tfcdi.reporting import figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  os.makedirs(out_dir, exist_ok=True)
  return [figures.segmentation_comparison(runs, os.path.join(out_dir, segmentation.FIG5_FILE))]


def codec_figures_section(workdir: str, out_dir: str) -> list[str]:
  """Figs. 9 and 10, drawn by the pipeline's figures step; copied beside the report."""
  lines = []
  for name, caption in (("fig10_decoded.png", "Fig. 10 analog: the decoded image at each "
                         "operating point (rate of the real file, PSNR)"),
                        ("fig9_channels.png", "Fig. 9 analog: the decoded image and the four "
                         "highest-entropy channels of the representation")):
    source = os.path.join(workdir, "figures", name)
    if os.path.exists(source):
      shutil.copyfile(source, os.path.join(out_dir, name))
      lines += [f"{caption}:", "", f"![{caption}]({name})", ""]
  return (["## The representation (Figs. 9 and 10)", ""] + lines) if lines else []


def benchmark_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """Speed-ups beside multiply-add ratios (Appendix A.9), and the Fig. 6 / Fig. 12 analogs."""
  source = os.path.join("benchmark", "benchmark.json")
  result = results_lib.read_json(os.path.join(workdir, source))
  if result is None:
    return []
  config = result["config"]
  rows = [[c["path"], c["baseline"], c["speedup"], c["multiply_add_ratio"],
           c["fraction_of_multiply_add_ratio"], c["published_ratio"],
           c["fraction_of_published_ratio"]] for c in result["comparisons"]]
  data["benchmark"] = {"source": source, "comparisons": result["comparisons"],
                       "device": result["device"], "config": config}
  lines = ["## Runtime benchmark (Appendix A.9, Figs. 6 and 12)", "",
           f"Per-image inference on {result['device']['requested']}, width "
           f"x{config['width_multiplier']:g}, batch {config['batch_size']} (segmentation "
           f"{config['seg_batch_size']}), {config['repeats']} timed rounds, latent of the "
           f"{config['operating_point']} bpp codec. Speed-up: the baseline's median time over the "
           "path's; *multiply-add ratio* is of the timed graphs, *published ratio* the same "
           "from the paper's Table 1 counts. The goal is a speed-up of at least "
           f"{claims_lib.RUNTIME_GOAL_FRACTION:.0%} of the ratio.", "",
           _table(["path", "baseline", "speed-up", "multiply-add ratio", "fraction",
                              "published ratio", "fraction of published"],
                             [[c if not isinstance(c, float) else round(c, 3) for c in r]
                              for r in rows]),
           ""]
  summary = data.get("classification")
  if summary:
    from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
    costs = results_lib.read_json(os.path.join(workdir, ARM_COSTS_FILE))
    if costs is None:
      lines += [f"(No Fig. 6 analog: {ARM_COSTS_FILE} is missing; the pipeline writes it before "
                "it renders the report.)", ""]
    else:
      points, notes = paper_figures.fig6_points(summary, costs, "top5")
      if points:
        data["fig6"] = {"source": ARM_COSTS_FILE, "points": points}
        paper_figures.plot_accuracy_vs_multiply_adds(
            points, os.path.join(out_dir, "fig6_accuracy_vs_multiply_adds.png"), "top5",
            published_lib.fig6_points(paper, "top5"))
        lines += ["![Fig. 6 analog](fig6_accuracy_vs_multiply_adds.png)", ""]
        lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    fig12 = paper_figures.fig12_accuracy_vs_runtime(
        result, summary, os.path.join(out_dir, "fig12_accuracy_vs_runtime.png"),
        summary_dir=workdir)
    if fig12:
      lines += ["![Fig. 12 analog](fig12_accuracy_vs_runtime.png)", ""]
  return lines


def _evaluation_sizes(data: dict) -> list[int]:
  """How many images each finished evaluation of the report's arms read."""
  sizes = [(r.get("measured") or {}).get("val_examples")
           for r in (data.get("classification") or {}).get("rows", [])]
  sizes += [(r.get("measured") or {}).get("eval_images")
            for r in (data.get("segmentation") or {}).get("rows", [])]
  return sorted({s for s in sizes if s})


def header_lines(preset: str, data: dict) -> list[str]:
  """What the report is, in its first lines: where its numbers come from and, for a preset
  that only checks the pipeline, that its verdicts are no evidence for or against the paper."""
  lines = [f"# tfcdi reproduction report (preset: {preset})", ""]
  check = claims_lib.pipeline_check(preset, data)
  if check:
    sizes = _evaluation_sizes(data)
    evaluated = (f"evaluations on {'/'.join(map(str, sizes))} images" if sizes else
                 "evaluations on a handful of images")
    models = (f"the preset's nets and settings, each run stopped after "
              f"{data['dry_run']['max_steps']} training step(s)" if data.get("dry_run") else
              "tiny nets, a few training steps")
    lines += [f"**This is a {check}: it shows that every step of the pipeline runs and "
              "writes its results, nothing more.** Its models are degenerate "
              f"({models}, {evaluated}), so its verdicts below say nothing about the "
              "paper's claims; each is marked as a pipeline check. The cpu preset's report "
              "(reports/cpu/) is the measured reproduction.", ""]
  lines += ["Every measured number below comes from a JSON file under the run's workdir "
            "(named in report.json); every published number from "
            "`shared/reference/paper_numbers.json`, labelled *published*.", ""]
  return lines


def write_report(workdir: str, preset: str, out_dir: str, paper_numbers: str | None = None,
                 classification_dataset: str = "Imagenette"):
  """Renders report.md / report.json from the workdir's results; returns report.md's path."""
  paper = published_lib.load_paper_numbers(paper_numbers)
  os.makedirs(out_dir, exist_ok=True)
  data = {"preset": preset,
          "paper_numbers": os.path.abspath(paper_numbers or published_lib.DEFAULT_PAPER_NUMBERS)}
  dry_run = os.path.join(workdir, claims_lib.DRY_RUN_FILE)
  if os.path.exists(dry_run):
    with open(dry_run) as f:
      data["dry_run"] = json.load(f)
  lines = []
  lines += flops_section(workdir, data)
  lines += codec_section(workdir, paper, data)
  figure = os.path.join(workdir, "rd", "rd_curve.png")
  if os.path.exists(figure):
    shutil.copyfile(figure, os.path.join(out_dir, "rd_curve.png"))
  lines += classification_section(workdir, paper, data, out_dir, classification_dataset)
  lines += width_section(workdir, paper, data, out_dir)
  lines += storage_section(workdir, data)
  lines += codec_figures_section(workdir, out_dir)
  lines += segmentation_section(workdir, paper, data, out_dir)
  lines += benchmark_section(workdir, paper, data, out_dir)
  lines += joint_section(workdir, paper, data, out_dir)
  # The claims come first in the report but read every section's numbers, so they go last here.
  data["claims"] = claims_lib.check_claims(data, paper, preset)
  lines = header_lines(preset, data) + claims_lib.claims_markdown(data["claims"]) + lines
  md_path = os.path.join(out_dir, "report.md")
  with open(md_path, "w") as f:
    f.write("\n".join(lines))
  with open(os.path.join(out_dir, "report.json"), "w") as f:
    json.dump(data, f, indent=2)
  return md_path
