"""The reproduction report: measured numbers beside the published ones, from JSON files only.

Inputs are the JSON results the pipeline's steps wrote under a workdir (see tfcdi/reproduce.py)
and ../shared/reference/paper_numbers.json (the only source of published numbers). Output:
report.md, report.json (everything the tables show, with the file each number came from) and the
figures, copied next to them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

from tfcdi.codec import operating_points
from tfcdi.data import latent_store

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PAPER_NUMBERS = os.path.join(REPO_ROOT, "..", "shared", "reference",
                                     "paper_numbers.json")


def collect_results(runs_dir: str, out_dir: str, name_of) -> list[str]:
  """Copies every `<runs_dir>/*/results.json` to `<out_dir>/<name_of(result)>.json`.

  The committed copies are what the tables cite, so they keep each run's exact command.
  Returns the copies' paths.
  """
  os.makedirs(out_dir, exist_ok=True)
  copies = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "*", "results.json"))):
    result = _read(path)
    copy = os.path.join(out_dir, f"{name_of(result)}.json")
    shutil.copyfile(path, copy)
    copies.append(copy)
  return copies


def load_paper_numbers(path: str | None = None) -> dict:
  path = path or os.environ.get("TFCDI_PAPER_NUMBERS", DEFAULT_PAPER_NUMBERS)
  if not os.path.exists(path):
    raise ValueError(f"published numbers not found at {path}; set TFCDI_PAPER_NUMBERS")
  with open(path) as f:
    return json.load(f)


def _read(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _percent(fraction):
  return None if fraction is None else 100.0 * fraction


def _fmt(value, digits=4):
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def _table(header, rows):
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def codec_section(workdir: str, paper: dict, data: dict) -> list[str]:
  """Operating points measured on Kodak from real files, with JPEG / JPEG 2000 at that bpp."""
  rd = _read(os.path.join(workdir, "rd", "rd_curve.json"))
  compare = {c["operating_point"]: c for c in (rd or {}).get("learned", [])}
  rows, records = [], []
  for op_name, op in operating_points.OPERATING_POINTS.items():
    source = os.path.join("codecs", op_name, "kodak_eval.json")
    result = _read(os.path.join(workdir, source))
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
  table = _read(os.path.join(workdir, "flops", "flops.json"))
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
  """Table 2's classification columns from the pipeline's classifier runs and stores."""
  files = sorted(glob.glob(os.path.join(workdir, "classification", "*", "results.json")))
  stores = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(workdir, "stores", "*",
                                                                     "metadata.json")))
  if not files and not stores:
    return []
  summary = classification_summary(files, stores, paper)
  for row in summary["rows"]:
    if "source" in row:
      row["source"] = os.path.relpath(row["source"], workdir)
  for store in summary["stores"]:
    store["store_dir"] = os.path.relpath(store["store_dir"], workdir)
  data["classification"] = summary
  text = classification_markdown(summary, f"Table 2: classification ({dataset})")
  # One level down: a section of this report, not a document of its own.
  lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()] + [""]
  return lines + classification_figures(summary, out_dir)


def classification_figures(summary: dict, out_dir: str) -> list[str]:
  """Fig. 3's analogs (accuracy per point, top-5 and top-1; validation curves) as Markdown."""
  from tfcdi import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
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
              "split):", "", "![Fig. 3 analog, validation curves](fig3_validation_curves.png)"]
  return lines + [""]


def joint_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """Section 6 (Figs. 7 and 11) from the pipeline's joint-training runs."""
  files = sorted(glob.glob(os.path.join(workdir, "joint", "*", "results.json")))
  if not files:
    return []
  summary = joint_summary(files, paper,
                          joint_segmentation_files(os.path.join(workdir, "joint", "seg")))
  for point in summary["points"]:
    point["sources"] = {k: os.path.relpath(v, workdir) for k, v in point["sources"].items()}
    relative_miou_sources(point, workdir)
  data["joint"] = summary
  from tfcdi import figures  # pylint: disable=g-import-not-at-top  (matplotlib, only if needed)
  written = figures.joint_figures(summary, out_dir)
  text = joint_markdown(summary, "Section 6: joint training (Figs. 7 and 11)")
  lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()] + [""]
  return lines + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in written] + [""]


def segmentation_section(workdir: str, paper: dict, data: dict, out_dir: str) -> list[str]:
  """Table 2's mIoU column and the Fig. 5 analog from the pipeline's segmenter runs."""
  files = sorted(glob.glob(os.path.join(workdir, "segmentation", "*", "results.json")))
  if not files:
    return []
  summary = segmentation_summary(files, paper)
  written = write_segmentation_figure(summary, out_dir)
  from tfcdi import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  fig4 = paper_figures.fig4_miou_per_operating_point(summary,
                                                     os.path.join(out_dir, "fig4_miou.png"))
  written += [fig4] if fig4 else []
  for row in summary["rows"]:
    if "source" in row:
      row["source"] = os.path.relpath(row["source"], workdir)
  data["segmentation"] = summary
  text = segmentation_markdown(summary, "Table 2: segmentation")
  lines = ["#" + line if line.startswith("#") else line for line in text.splitlines()] + [""]
  return lines + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in written] + [""]


FIG5_FILE = "fig5_masks.png"


def write_segmentation_figure(summary: dict, out_dir: str) -> list[str]:
  """The Fig. 5 analog from the predictions.npz beside each row's results.json (if any)."""
  runs = segmentation_figure_runs(
      summary, lambda row: os.path.join(os.path.dirname(row["source"]), "predictions.npz"))
  if not runs:
    return []
  from tfcdi import figures  # pylint: disable=g-import-not-at-top  (matplotlib, only if needed)
  os.makedirs(out_dir, exist_ok=True)
  return [figures.segmentation_comparison(runs, os.path.join(out_dir, FIG5_FILE))]


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
  from tfcdi import benchmark  # pylint: disable=g-import-not-at-top
  source = os.path.join("benchmark", "benchmark.json")
  result = _read(os.path.join(workdir, source))
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
           "path's; *published ratio* is the multiply-add ratio from the paper's Table 1 counts. "
           f"The goal is a speed-up of at least {benchmark.GOAL_FRACTION:.0%} of the ratio.", "",
           _table(["path", "baseline", "speed-up", "multiply-add ratio", "fraction",
                   "published ratio", "fraction of published"],
                  [[c if not isinstance(c, float) else round(c, 3) for c in r] for r in rows]),
           ""]
  summary = data.get("classification")
  if summary:
    points, notes = benchmark.accuracy_points(
        summary, workdir, "top5", default_width=config["width_multiplier"],
        codec_bundles=sorted(glob.glob(os.path.join(workdir, "codecs", "*", "codec_*.npz"))))
    if points:
      fig6 = os.path.join(out_dir, "fig6_accuracy_vs_multiply_adds.png")
      benchmark.plot_accuracy_vs_multiply_adds(points, fig6, "top5",
                                               benchmark.published_points(paper, "top5"))
      lines += ["![Fig. 6 analog](fig6_accuracy_vs_multiply_adds.png)", ""]
      lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    from tfcdi import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
    fig12 = paper_figures.fig12_accuracy_vs_runtime(
        result, summary, os.path.join(out_dir, "fig12_accuracy_vs_runtime.png"),
        summary_dir=workdir)
    if fig12:
      lines += ["![Fig. 12 analog](fig12_accuracy_vs_runtime.png)", ""]
  return lines


def write_report(workdir: str, preset: str, out_dir: str, paper_numbers: str | None = None,
                 classification_dataset: str = "Imagenette"):
  """Renders report.md / report.json from the workdir's results; returns report.md's path."""
  paper = load_paper_numbers(paper_numbers)
  os.makedirs(out_dir, exist_ok=True)
  data = {"preset": preset, "paper_numbers": os.path.abspath(paper_numbers or
                                                             DEFAULT_PAPER_NUMBERS)}
  lines = [f"# tfcdi reproduction report (preset: {preset})", "",
           "Every measured number below comes from a JSON file under the run's workdir "
           "(named in report.json); every published number from "
           "`shared/reference/paper_numbers.json`, labelled *published*.", ""]
  header_lines = len(lines)
  lines += flops_section(workdir, data)
  lines += codec_section(workdir, paper, data)
  figure = os.path.join(workdir, "rd", "rd_curve.png")
  if os.path.exists(figure):
    shutil.copyfile(figure, os.path.join(out_dir, "rd_curve.png"))
  lines += classification_section(workdir, paper, data, out_dir, classification_dataset)
  lines += codec_figures_section(workdir, out_dir)
  lines += segmentation_section(workdir, paper, data, out_dir)
  lines += benchmark_section(workdir, paper, data, out_dir)
  lines += joint_section(workdir, paper, data, out_dir)
  # The claims come first in the report but read every section's numbers, so they go last here.
  from tfcdi import claims  # pylint: disable=g-import-not-at-top
  data["claims"] = claims.check_claims(data, paper, preset)
  lines[header_lines:header_lines] = claims.claims_markdown(data["claims"])
  md_path = os.path.join(out_dir, "report.md")
  with open(md_path, "w") as f:
    f.write("\n".join(lines))
  with open(os.path.join(out_dir, "report.json"), "w") as f:
    json.dump(data, f, indent=2)
  return md_path


# --- classification (Table 2's classification columns) ----------------------------------------

# The arms of the paper's Table 2, in its order: (net, input). ResNet-71 / cResNet-72 appear only
# at 0.0983 bpp in the paper.
CLASSIFICATION_ARMS = (("resnet50", "original"), ("resnet50", "decoded"), ("cresnet51", "latent"),
                       ("cresnet39", "latent"), ("resnet71", "decoded"), ("cresnet72", "latent"))


def published_table2(paper: dict) -> dict:
  """{(bpp name, net): row} of Table 2; bpp names as in OPERATING_POINTS, or 'original'."""
  names = {float(name): name for name in operating_points.OPERATING_POINTS}
  table = {}
  for row in paper["table2"]["rows"]:
    bpp = row["bpp"] if row["bpp"] == "original" else names.get(float(row["bpp"]))
    table[(bpp, row["net"])] = row
  return table


def _index_runs(results_files: list[str], key_of, what: str) -> dict:
  """{key_of(result): {"file", "result"}} of run results; a missing file or a repeat is an error."""
  runs = {}
  for path in results_files:
    result = _read(path)
    if result is None:
      raise ValueError(f"no {what} results at {path}")
    key = key_of(result)
    if key in runs:
      raise ValueError(f"two results for {key}: {runs[key]['file']} and {path}")
    runs[key] = {"file": path, "result": result}
  return runs


def _table2_arms(runs: dict, arms, published: dict):
  """Yields (operating point, net, input, run or None, published row or None) in Table 2's order.

  An arm is yielded if it was run or the paper has it; `runs` ({(op, net, input): run}) is
  emptied as it goes, and runs of arms the table has no row for are an error (dropping them
  silently would hide a mislabelled run).
  """
  for op_name in ("original", *operating_points.OPERATING_POINTS):
    for net, input_kind in arms:
      if (op_name == "original") != (input_kind == "original"):
        continue
      run = runs.pop((op_name, net, input_kind), None)
      paper_row = published.get((op_name, net))
      if run is not None or paper_row is not None:
        yield op_name, net, input_kind, run, paper_row
  if runs:
    raise ValueError(f"results for arms the table has no row for: {sorted(runs)}")


def classification_summary(results_files: list[str], store_dirs: list[str], paper: dict) -> dict:
  """Measured top-1 / top-5 per arm and the stores' sizes, beside Table 2 (published).

  Args:
    results_files: results.json files written by tfcdi-train-classifier.
    store_dirs: latent stores (tfcdi-encode-dataset) whose size to report.
    paper: the published numbers (load_paper_numbers()).
  """
  runs = _index_runs(results_files,
                     lambda r: (r["operating_point"], r["net"], r["input"]), "classifier")
  rows = []
  for op_name, net, input_kind, run, paper_row in _table2_arms(runs, CLASSIFICATION_ARMS,
                                                               published_table2(paper)):
    row = {"operating_point": op_name, "net": net, "input": input_kind,
           "published_imagenet": (None if paper_row is None else
                                  {"top1": paper_row["top1"], "top5": paper_row["top5"]})}
    if run is not None:
      result = run["result"]
      final = result.get("final") or {}
      steps = [e["step_seconds"] for e in result["epochs"] if "step_seconds" in e]
      row["measured"] = {
          "top1": None if not final else 100.0 * final["top1"],
          "top5": None if not final else 100.0 * final["top5"],
          "epochs_done": len(result["epochs"]),
          "epochs": result["config"]["epochs"],
          "complete": bool(result.get("complete")),
          "val_examples": result["epochs"][-1]["val_examples"] if result["epochs"] else None,
          "median_step_seconds": sorted(steps)[len(steps) // 2] if steps else None,
          "codec": (result.get("codec") or {}).get("name"),
          "codec_fingerprint": (result.get("codec") or {}).get("fingerprint"),
          "command": result.get("command"),
          "precision": result.get("precision", "float32"),
          # [epoch, top-1, top-5, examples] of each epoch's validation (Fig. 3's curves).
          "curve": [[e["epoch"], _percent(e.get("val_top1")), _percent(e.get("val_top5")),
                     e.get("val_examples")] for e in result["epochs"]],
      }
      row["source"] = run["file"]
    rows.append(row)
  stores = []
  for store_dir in store_dirs:
    meta = latent_store.read_metadata(store_dir)
    splits = {name: {k: entry.get(k) for k in ("count", "source_bytes", "store_bytes", "ratio",
                                                "bpp")}
              for name, entry in meta["splits"].items() if entry.get("complete")}
    stores.append({"operating_point": meta["codec"]["operating_point"],
                   "codec": meta["codec"]["name"], "image_size": meta["image_size"],
                   "splits": splits, "totals": meta.get("totals"),
                   "store_dir": os.path.abspath(store_dir)})
  storage = paper["claims"]["imagenet_storage_gb"]
  return {"rows": rows, "stores": stores,
          "published_storage_imagenet_gb": {"original": storage["original"],
                                            "at_0.635_bpp": storage["at_0.635_bpp"],
                                            "ratio": storage["ratio"]}}


def classification_markdown(summary: dict, title: str) -> str:
  """The summary as Markdown: accuracy per arm beside the published ImageNet numbers."""
  rows = []
  for r in summary["rows"]:
    m = r.get("measured") or {}
    p = r.get("published_imagenet") or {}
    state = None
    if m:
      state = "done" if m["complete"] else f"{m['epochs_done']}/{m['epochs']} epochs"
    rows.append([r["operating_point"], r["net"], r["input"], m.get("top1"), m.get("top5"), state,
                 m.get("median_step_seconds"), p.get("top1"), p.get("top5")])
  lines = [f"# {title}", "",
           "Measured: the validation split, central crops, after the last epoch (percent). "
           "Published: the paper's Table 2 on ImageNet (1000 classes, 28 epochs, full-width "
           "nets), labelled *published*; the two are not the same task, so compare the gaps "
           "between arms, not the values.", "",
           _table(["bpp", "net", "input", "top-1", "top-5", "state", "s/step",
                   "top-1 (published, ImageNet)", "top-5 (published, ImageNet)"],
                  [[c if not isinstance(c, float) else f"{c:.2f}" for c in row]
                   for row in rows]), ""]
  if summary["stores"]:
    store_rows = []
    for s in summary["stores"]:
      for split, e in s["splits"].items():
        store_rows.append([s["operating_point"], s["codec"], split, e["count"],
                           f"{e['source_bytes'] / 2**20:.1f}", f"{e['store_bytes'] / 2**20:.1f}",
                           f"{e['ratio']:.2f}x", f"{e['bpp']:.4f}"])
    pub = summary["published_storage_imagenet_gb"]
    lines += ["## The latent store against the source JPEGs", "",
              _table(["bpp", "codec", "split", "images", "source MiB", "store MiB", "ratio",
                      ".tfci bpp"], store_rows), "",
              f"Published (ImageNet at 0.635 bpp): {pub['original']} GB -> {pub['at_0.635_bpp']} "
              f"GB, {pub['ratio']}x.", ""]
  missing = [f"{r['net']} on {r['input']} at {r['operating_point']}" for r in summary["rows"]
             if not r.get("measured")]
  if missing:
    lines += ["## Not measured yet", "", *(f"- {m}" for m in missing), ""]
  return "\n".join(lines)


# --- joint training (Section 6: Figs. 7 and 11) ---------------------------------------------


def _direction(delta, tolerance=1e-9) -> str | None:
  if delta is None:
    return None
  return "up" if delta > tolerance else "down" if delta < -tolerance else "unchanged"


def _accuracy(evaluation: dict | None) -> dict:
  if not evaluation or "top1" not in evaluation:
    return {"top1": None, "top5": None}
  return {"top1": 100.0 * evaluation["top1"], "top5": 100.0 * evaluation["top5"]}


def _delta(after: dict, before: dict, key: str):
  if after.get(key) is None or before.get(key) is None:
    return None
  return after[key] - before[key]


# Section 6's segmentation step: cResNet-51-d trained from each arm's classifier on that arm's
# codec, in folders named <arm>_<operating point> (e.g. joint_ft_0.0983).
JOINT_SEGMENTATION_ARMS = ("baseline", "compression_ft", "joint_ft")


def joint_segmentation_files(folder: str) -> dict:
  """{(operating point, arm): results.json} of the segmenters under `folder`/<arm>_<op>/."""
  found = {}
  for path in sorted(glob.glob(os.path.join(folder, "*", "results.json"))):
    name = os.path.basename(os.path.dirname(path))
    for arm in JOINT_SEGMENTATION_ARMS:
      op_name = name[len(arm) + 1:] if name.startswith(arm + "_") else None
      if op_name in operating_points.OPERATING_POINTS:
        found[(op_name, arm)] = path
  return found


def _segmentation_miou(path: str | None, op_name: str) -> dict:
  result = _read(path) if path else None
  if result is None:
    return {"miou": None}
  if result.get("operating_point") != op_name:
    raise ValueError(f"{path} is a segmenter at {result.get('operating_point')}, not {op_name}")
  done = result.get("steps") == result["config"]["num_steps"] and "miou" in result
  return {"miou": 100.0 * result["miou"] if done else None, "miou_source": path,
          "miou_init_from": result.get("init_from")}


def relative_miou_sources(point: dict, start: str) -> None:
  for key in JOINT_SEGMENTATION_ARMS:
    if point[key].get("miou_source"):
      point[key]["miou_source"] = os.path.relpath(point[key]["miou_source"], start)


def joint_summary(results_files: list[str], paper: dict,
                  segmentation_files: dict | None = None) -> dict:
  """Baseline, compression ft. (the control) and joint ft. per operating point.

  Args:
    results_files: results.json files of tfcdi-train-joint, any arms and operating points;
      at most one per (operating point, arm).
    paper: the published numbers (load_paper_numbers()).
    segmentation_files: {(operating point, "baseline" | "compression_ft" | "joint_ft"):
      results.json of tfcdi-train-segmenter} for the segmentation step (joint_segmentation_files).

  Accuracy is top-1 / top-5 in percent on the whole validation split, measured by the same
  loop before and after fine-tuning; the codec's rate and quality are Kodak's, from real files.
  Every change is reported with its measured direction, whatever the paper found.
  """
  by_op: dict = {}
  for path in results_files:
    result = _read(path)
    if result is None:
      raise ValueError(f"no joint-training results at {path}")
    arms = by_op.setdefault(result["operating_point"], {})
    if result["arm"] in arms:
      raise ValueError(f"two {result['arm']!r} results at {result['operating_point']}: "
                       f"{arms[result['arm']]['file']} and {path}")
    arms[result["arm"]] = {"file": path, "result": result}
  points = []
  for op_name in [n for n in operating_points.OPERATING_POINTS if n in by_op]:
    arms = by_op[op_name]
    joint, codec, control = (arms.get(a, {}).get("result") for a in
                             ("joint", "codec", "classifier"))
    start = (joint or control or codec or {}).get("start")
    kodak_start = next((r["kodak"]["start"] for r in (joint, codec)
                        if r and r.get("complete") and "kodak" in r), None)
    baseline = {**_accuracy(start), "kodak": kodak_start}
    compression_ft = {**_accuracy(control["final"] if control and control.get("complete")
                                  else None),
                      "from_scratch": _accuracy_of_final(control["base_classifier"]["final"]
                                                         if control else None),
                      "kodak": (codec or {}).get("kodak", {}).get("final")}
    joint_ft = {**_accuracy(joint["final"] if joint and joint.get("complete") else None),
                "kodak": (joint or {}).get("kodak", {}).get("final")}
    for arm, entry in (("baseline", baseline), ("compression_ft", compression_ft),
                       ("joint_ft", joint_ft)):
      entry.update(_segmentation_miou((segmentation_files or {}).get((op_name, arm)), op_name))
    changes = {}
    for name, after in (("compression_ft", compression_ft), ("joint_ft", joint_ft)):
      for key in ("top1", "top5", "miou"):
        d = _delta(after, baseline, key)
        changes[f"{name}_{key}_points"] = {"value": d, "direction": _direction(d)}
      for key in ("bpp", "psnr", "ssim", "ms_ssim"):
        d = (None if not (after["kodak"] and baseline["kodak"]) else
             after["kodak"][key] - baseline["kodak"][key])
        changes[f"{name}_kodak_{key}"] = {"value": d, "direction": _direction(d)}
    # The paper states its classification gain in top-5 points; top-1 is reported beside it.
    for key in ("top1", "top5", "miou"):
      d = _delta(joint_ft, compression_ft, key)
      changes[f"joint_vs_compression_ft_{key}_points"] = {"value": d,
                                                          "direction": _direction(d)}
    points.append({
        "operating_point": op_name,
        "val_examples": (start or {}).get("examples"),
        "baseline": baseline, "compression_ft": compression_ft, "joint_ft": joint_ft,
        "changes": changes,
        "arms_done": sorted(a for a, v in arms.items() if v["result"].get("complete")),
        "sources": {a: v["file"] for a, v in arms.items()},
        "commands": {a: v["result"].get("command") for a, v in arms.items()},
    })
  gain = paper["claims"]["joint_training_gain_0.0983"]
  return {"points": points,
          "published": {"joint_vs_compression_ft_0.0983": {
              "classification_top5_points": gain["classification_top5_points"],
              "segmentation_miou_points": gain["segmentation_miou_points"]},
              "hyperparameters": paper["training"]["joint"]}}


def _accuracy_of_final(final: dict | None) -> dict:
  """A train_classifier 'final' (fractions) in percent."""
  return _accuracy(final)


def joint_markdown(summary: dict, title: str) -> str:
  lines = [f"# {title}", "",
           "Top-1 / top-5 (percent) of cResNet-51 on the latent, on the validation images "
           "counted under each point; codec metrics on Kodak from real .tfci files. "
           "*Compression ft.* is the paper's "
           "control: the codec fine-tuned alone, cResNet-51 trained from scratch on it, then "
           "fine-tuned with the same schedule. mIoU: cResNet-51-d started from each arm's "
           "classifier, on that arm's codec (the paper's segmentation step). Directions are as "
           "measured.", ""]
  for point in summary["points"]:
    rows = []
    for label, key in (("baseline", "baseline"), ("compression ft.", "compression_ft"),
                       ("joint ft.", "joint_ft")):
      entry = point[key]
      kodak = entry.get("kodak") or {}
      rows.append([label, entry.get("top1"), entry.get("top5"), entry.get("miou"),
                   kodak.get("bpp"), kodak.get("psnr"), kodak.get("ssim"), kodak.get("ms_ssim")])
    lines += [f"## {point['operating_point']} bpp", "",
              f"{point['val_examples']} validation images.", "",
              _table(["", "top-1", "top-5", "mIoU (CamVid)", "Kodak bpp", "PSNR", "SSIM",
                      "MS-SSIM"],
                     [[c if not isinstance(c, float) else round(c, 4) for c in r]
                      for r in rows]), ""]
    scratch = point["compression_ft"].get("from_scratch") or {}
    if scratch.get("top1") is not None:
      lines += [f"cResNet-51 from scratch on the compression-ft. codec, before its fine-tuning: "
                f"top-1 {scratch['top1']:.2f}, top-5 {scratch['top5']:.2f}.", ""]
    change_rows = [[k, v["value"], v["direction"]] for k, v in point["changes"].items()
                   if v["value"] is not None]
    if change_rows:
      lines += [_table(["change", "measured", "direction"], change_rows), ""]
    missing = sorted({"joint", "codec", "classifier"} - set(point["arms_done"]))
    if missing:
      lines += [f"Arms not finished: {', '.join(missing)}.", ""]
  pub = summary["published"]["joint_vs_compression_ft_0.0983"]
  lines += ["Published (ImageNet, 0.0983 bpp): joint ft. beats compression ft. by "
            f"{pub['classification_top5_points']} points of classification and "
            f"{pub['segmentation_miou_points']} points of mIoU.", ""]
  return "\n".join(lines)


# --- segmentation (Table 2's mIoU column, Fig. 5) -------------------------------------------

# Table 2's mIoU column has the same rows as its classification columns; the nets are the
# dilated "-d" variants of the same backbones.
SEGMENTATION_ARMS = CLASSIFICATION_ARMS
# The paper's headline comparison per operating point: segmenting from the representation
# (cResNet-51-d) against segmenting from decoded RGB (ResNet-50-d).
SEGMENTATION_PAIR = (("cresnet51", "latent"), ("resnet50", "decoded"))


def segmentation_summary(results_files: list[str], paper: dict) -> dict:
  """Measured mIoU per arm beside Table 2's (published, PASCAL VOC), and latent-vs-decoded gaps.

  Args:
    results_files: results.json files written by tfcdi-train-segmenter.
    paper: the published numbers (load_paper_numbers()).
  """
  runs = _index_runs(
      results_files,
      lambda r: (r.get("operating_point") or "original", r["net"].removesuffix("-d"), r["input"]),
      "segmenter")
  rows = []
  for op_name, net, input_kind, run, paper_row in _table2_arms(runs, SEGMENTATION_ARMS,
                                                               published_table2(paper)):
    row = {"operating_point": op_name, "net": f"{net}-d", "input": input_kind,
           "published_voc_miou": None if paper_row is None else paper_row["miou"]}
    if run is not None:
      result = run["result"]
      num_steps = result["config"]["num_steps"]
      row["measured"] = {
          "miou": 100.0 * result["miou"] if "miou" in result else None,
          "pixel_accuracy": (100.0 * result["pixel_accuracy"] if "pixel_accuracy" in result
                             else None),
          "steps": result.get("steps", 0), "num_steps": num_steps,
          "complete": result.get("steps") == num_steps,
          "dataset": result.get("dataset"), "eval_split": result.get("eval_split"),
          "eval_images": result.get("eval_images"),
          "width_multiplier": result["config"].get("width_multiplier"),
          "multiply_adds_per_crop": result.get("multiply_adds_per_crop"),
          "crop": result.get("crop"),
          "seconds_per_step": result.get("seconds_per_step"),
          "codec": (result.get("codec") or {}).get("name"),
          "codec_fingerprint": (result.get("codec") or {}).get("fingerprint"),
          "command": result.get("command"),
      }
      row["source"] = run["file"]
    rows.append(row)
  gaps = []
  (latent_net, latent_in), (rgb_net, rgb_in) = SEGMENTATION_PAIR
  for op_name in operating_points.OPERATING_POINTS:
    by_arm = {(r["net"], r["input"]): r for r in rows if r["operating_point"] == op_name}
    latent = by_arm.get((f"{latent_net}-d", latent_in), {})
    rgb = by_arm.get((f"{rgb_net}-d", rgb_in), {})
    measured = None
    if (latent.get("measured") or {}).get("complete") and (rgb.get("measured") or {}).get(
        "complete"):
      measured = latent["measured"]["miou"] - rgb["measured"]["miou"]
    published_gap = None
    if latent.get("published_voc_miou") is not None and rgb.get("published_voc_miou") is not None:
      published_gap = latent["published_voc_miou"] - rgb["published_voc_miou"]
    gaps.append({
        "operating_point": op_name,
        "comparison": f"{latent_net}-d on the latent minus {rgb_net}-d on decoded RGB (mIoU "
                      "points)",
        "measured": measured, "measured_direction": _direction(measured),
        "published_voc": published_gap, "published_direction": _direction(published_gap),
        "same_direction": (None if measured is None or published_gap is None
                           else _direction(measured) == _direction(published_gap)),
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
    rows.append([r["operating_point"], r["net"], r["input"], m.get("miou"),
                 m.get("pixel_accuracy"), state, m.get("seconds_per_step"),
                 r.get("published_voc_miou")])
  dataset = next((r["measured"]["dataset"] for r in summary["rows"] if r.get("measured")), None)
  lines = [f"# {title}", "",
           f"Measured: mIoU and pixel accuracy (percent) on the full validation images of "
           f"{dataset or 'the dataset'}, ignore label excluded, after the last step. Published: "
           "the paper's Table 2 on PASCAL VOC 2012 val (21 classes, full-width nets initialised "
           "from ImageNet classifiers), labelled *published*; compare the gaps between arms, "
           "not the values.", "",
           _table(["bpp", "net", "input", "mIoU", "pixel acc.", "state", "s/step",
                   "mIoU (published, VOC)"],
                  [[c if not isinstance(c, float) else f"{c:.2f}" for c in row]
                   for row in rows]), ""]
  gap_rows = [[g["operating_point"], g["measured"], g["measured_direction"], g["published_voc"],
               g["published_direction"], g["same_direction"]]
              for g in summary["latent_vs_decoded"]]
  if any(g["measured"] is not None or g["published_voc"] is not None
         for g in summary["latent_vs_decoded"]):
    lines += ["## From the representation vs from decoded RGB", "",
              "cResNet-51-d on the latent minus ResNet-50-d on the decoded image, in mIoU points "
              "(the paper's Section 5 claim: the representation wins at the lowest rate).", "",
              _table(["bpp", "measured", "direction", "published (VOC)", "published direction",
                      "same direction"],
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


# --- the hyperprior follow-up (shared/papers/004): two branches vs y_hat alone vs decoded RGB ---

# (net, input, latent_inputs) of each arm of the follow-up's comparison, in table order.
HYPERPRIOR_ARMS = (("cresnet39", "latent", "y_hat+sigma_hat"), ("cresnet39", "latent", "y_hat"),
                   ("resnet50", "decoded", None))


def seed_of(result: dict) -> int:
  """The --seed of a classifier run's results (0 for runs that predate the flag)."""
  return int((result.get("config") or {}).get("seed", 0))


def _hyperprior_measured(result: dict) -> dict:
  final = result.get("final") or {}
  return {"top1": 100.0 * final["top1"] if final else None,
          "top5": 100.0 * final["top5"] if final else None,
          "complete": bool(result.get("complete")),
          "epochs_done": len(result.get("epochs", [])),
          "epochs": result["config"]["epochs"],
          "seed": seed_of(result),
          "codec": (result.get("codec") or {}).get("name"),
          "command": result.get("command")}


def _mean_over_seeds(measured: list[dict]) -> dict:
  """One arm's numbers over its seeds: the mean of the finished runs, and their spread.

  One run is returned as it is. With several, top-1 / top-5 are the means of the complete runs
  (an unfinished run's last evaluation is on a subset, so it does not enter the mean), and
  `top1_range` is (lowest, highest): one seed's number alone hides how far a second one lands.
  """
  if len(measured) == 1:
    return measured[0]
  done = [m for m in measured if m["complete"]] or measured[:1]
  top1 = [m["top1"] for m in done if m["top1"] is not None]
  top5 = [m["top5"] for m in done if m["top5"] is not None]
  return {**done[0],
          "top1": sum(top1) / len(top1) if top1 else None,
          "top5": sum(top5) / len(top5) if top5 else None,
          "top1_range": [min(top1), max(top1)] if top1 else None,
          "complete": all(m["complete"] for m in measured),
          "epochs_done": min(m["epochs_done"] for m in measured),
          "seeds": [m["seed"] for m in measured],
          "seeds_averaged": [m["seed"] for m in done if m["top1"] is not None]}


def hyperprior_summary(results_files: list[str], codec_results: list[dict], paper: dict) -> dict:
  """Per hyperprior quality: its Kodak rate and quality, and top-1 / top-5 of each arm.

  Args:
    results_files: results.json files of tfcdi-train-classifier runs on hyperprior stores.
    codec_results: the hyperprior codecs' kodak_eval.json contents (tfcdi-train-codec writes
      them), measured from real files.
    paper: the published numbers; the follow-up's are on MINC-2500 / RSSCN7 / RESISC45, not
      Imagenette, and are carried as published context only.
  """
  runs = _index_runs(results_files, lambda r: (str(r["operating_point"]), r["net"], r["input"],
                                                r.get("latent_inputs"), seed_of(r)),
                     "classifier")
  for run in runs.values():
    if run["result"].get("codec_family") != "hyperprior":
      raise ValueError(f"{run['file']} is not a run on a hyperprior store (codec family "
                       f"{run['result'].get('codec_family')!r})")
  codecs = {}
  for result in codec_results:
    if result.get("codec_family") != "hyperprior":
      raise ValueError(f"codec result {result.get('codec')!r} is not a hyperprior codec's")
    codecs[f"q{result['quality']}"] = result
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
        arm["measured"] = _mean_over_seeds(measured)
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
