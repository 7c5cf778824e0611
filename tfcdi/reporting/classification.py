"""Table 2's classification columns: top-1 / top-5 per arm (mean over its seeds) beside the
published ImageNet numbers, and the latent stores' sizes beside their source JPEGs'."""

from __future__ import annotations

import os

from tfcdi.codec import operating_points
from tfcdi.reporting import published as published_lib
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

# The arms of the paper's Table 2, in its order: (net, input). ResNet-71 / cResNet-72 appear only
# at 0.0983 bpp in the paper.
CLASSIFICATION_ARMS = (("resnet50", "original"), ("resnet50", "decoded"), ("cresnet51", "latent"),
                       ("cresnet39", "latent"), ("resnet71", "decoded"), ("cresnet72", "latent"))
# A store's description, written by tfcdi-encode-dataset beside its shards.
STORE_METADATA = "metadata.json"


def table2_arms(arms_runs: dict, arms, published: dict):
  """Yields (operating point, net, input, runs or [], published row or None) in Table 2's order.

  `arms_runs` is {(op, net, input): [run per seed]}. An arm is yielded if it was run or the
  paper has it; `arms_runs` is emptied as it goes, and runs of arms the table has no row for are
  an error (dropping them silently would hide a mislabelled run).
  """
  for op_name in ("original", *operating_points.OPERATING_POINTS):
    for net, input_kind in arms:
      if (op_name == "original") != (input_kind == "original"):
        continue
      runs = arms_runs.pop((op_name, net, input_kind), [])
      paper_row = published.get((op_name, net))
      if runs or paper_row is not None:
        yield op_name, net, input_kind, runs, paper_row
  if arms_runs:
    raise ValueError(f"results for arms the table has no row for: {sorted(arms_runs)}")


def _measured(result: dict) -> dict:
  final = result.get("final") or {}
  steps = [e["step_seconds"] for e in result["epochs"] if "step_seconds" in e]
  config = result["config"]
  return {
      "top1": None if not final else 100.0 * final["top1"],
      "top5": None if not final else 100.0 * final["top5"],
      "seed": results_lib.seed_of(result),
      "epochs_done": len(result["epochs"]),
      "epochs": config["epochs"],
      "complete": bool(result.get("complete")),
      "val_examples": result["epochs"][-1]["val_examples"] if result["epochs"] else None,
      "median_step_seconds": sorted(steps)[len(steps) // 2] if steps else None,
      "codec": (result.get("codec") or {}).get("name"),
      "codec_fingerprint": (result.get("codec") or {}).get("fingerprint"),
      "command": result.get("command"),
      "precision": result.get("precision", "float32"),
      # What the run was, for the claims' scale notes (read here, never from the presets).
      "width_multiplier": config.get("width_multiplier"),
      "max_units_per_stage": config.get("max_units_per_stage"),
      "num_classes": result.get("num_classes"),
      # [epoch, top-1, top-5, examples] of each epoch's validation (Fig. 3's curves).
      "curve": [[e["epoch"], results_lib.percent(e.get("val_top1")),
                 results_lib.percent(e.get("val_top5")), e.get("val_examples")]
                for e in result["epochs"]],
  }


def read_store(store_dir: str) -> dict:
  """A latent store's sizes, from its metadata.json."""
  meta = results_lib.read_json(os.path.join(store_dir, STORE_METADATA))
  if meta is None:
    raise ValueError(f"no latent store at {store_dir} (no {STORE_METADATA})")
  splits = {name: {k: entry.get(k) for k in ("count", "source_bytes", "store_bytes", "ratio",
                                              "bpp")}
            for name, entry in meta["splits"].items() if entry.get("complete")}
  return {"operating_point": meta["codec"]["operating_point"], "codec": meta["codec"]["name"],
          "image_size": meta["image_size"], "splits": splits, "totals": meta.get("totals"),
          "store_dir": os.path.abspath(store_dir)}


def classification_summary(results_files: list[str], store_dirs: list[str], paper: dict,
                           store_records: list[dict] = ()) -> dict:
  """Measured top-1 / top-5 per arm and the stores' sizes, beside Table 2 (published).

  Args:
    results_files: results.json files written by tfcdi-train-classifier; several seeds of an
      arm (config.seed) are averaged into its row.
    store_dirs: latent stores (tfcdi-encode-dataset) whose size to report.
    paper: the published numbers (load_paper_numbers()).
    store_records: stores' sizes read before (read_store's records, as a committed table kept
      them), for stores that are not on this machine.
  """
  runs = results_lib.index_runs(
      results_files, lambda r: (r["operating_point"], r["net"], r["input"],
                                results_lib.seed_of(r)), "classifier")
  rows = []
  for op_name, net, input_kind, seed_runs, paper_row in table2_arms(
      results_lib.group_seeds(runs), CLASSIFICATION_ARMS,
      published_lib.published_table2(paper)):
    row = {"operating_point": op_name, "net": net, "input": input_kind,
           "published_imagenet": (None if paper_row is None else
                                  {"top1": paper_row["top1"], "top5": paper_row["top5"]})}
    if seed_runs:
      measured = [_measured(run["result"]) for run in seed_runs]
      row["measured"] = seeds_lib.aggregate(measured, ("top1", "top5"))
      row["source"] = seed_runs[0]["file"]
      if len(seed_runs) > 1:
        row["seed_runs"] = [{"seed": m["seed"], "top1": m["top1"], "top5": m["top5"],
                             "complete": m["complete"], "source": run["file"]}
                            for m, run in zip(measured, seed_runs)]
    rows.append(row)
  storage = paper["claims"]["imagenet_storage_gb"]
  return {"rows": rows, "stores": [read_store(d) for d in store_dirs] + list(store_records),
          "published_storage_imagenet_gb": {"original": storage["original"],
                                            "at_0.635_bpp": storage["at_0.635_bpp"],
                                            "ratio": storage["ratio"]}}


def relative_sources(summary: dict, start: str) -> None:
  """Rows' (and their seeds') sources relative to `start`, so committed files cite each other."""
  for row in summary["rows"]:
    for entry in [row, *row.get("seed_runs", [])]:
      if "source" in entry:
        entry["source"] = os.path.relpath(entry["source"], start)


def _state(m: dict) -> str | None:
  if not m:
    return None
  return "done" if m["complete"] else f"{m['epochs_done']}/{m['epochs']} epochs"


def classification_markdown(summary: dict, title: str) -> str:
  """The summary as Markdown: accuracy per arm beside the published ImageNet numbers."""
  rows = []
  for r in summary["rows"]:
    m = r.get("measured") or {}
    p = r.get("published_imagenet") or {}
    rows.append([r["operating_point"], r["net"], r["input"], seeds_lib.cell(m, "top1"),
                 seeds_lib.cell(m, "top5"), m.get("num_seeds"), _state(m),
                 m.get("median_step_seconds"), p.get("top1"), p.get("top5")])
  lines = [f"# {title}", "",
           "Measured: the validation split, central crops, after the last epoch (percent); an "
           "arm run with several seeds shows the mean of its finished seeds with their range "
           "(lowest-highest), and *seeds* says how many. Published: the paper's Table 2 on "
           "ImageNet (1000 classes, 28 epochs, full-width nets), labelled *published*; the two "
           "are not the same task, so compare the gaps between arms, not the values.", "",
           results_lib.table(["bpp", "net", "input", "top-1", "top-5", "seeds", "state",
                              "s/step", "top-1 (published, ImageNet)",
                              "top-5 (published, ImageNet)"],
                             [[c if not isinstance(c, float) else f"{c:.2f}" for c in row]
                              for row in rows]), ""]
  if summary["stores"]:
    store_rows = []
    for s in summary["stores"]:
      for split, e in s["splits"].items():
        store_rows.append([s["operating_point"], s["codec"], split, e["count"],
                           results_lib.size_text(e["source_bytes"]),
                           results_lib.size_text(e["store_bytes"]), f"{e['ratio']:.2f}x",
                           f"{e['bpp']:.4f}"])
    pub = summary["published_storage_imagenet_gb"]
    lines += ["## The latent store against the source JPEGs", "",
              results_lib.table(["bpp", "codec", "split", "images", "source", "store", "ratio",
                                 ".tfci bpp"], store_rows), "",
              f"Published (ImageNet at 0.635 bpp): {pub['original']} GB -> {pub['at_0.635_bpp']} "
              f"GB, {pub['ratio']}x.", ""]
  missing = [f"{r['net']} on {r['input']} at {r['operating_point']}" for r in summary["rows"]
             if not r.get("measured")]
  if missing:
    lines += ["## Not measured yet", "", *(f"- {m}" for m in missing), ""]
  return "\n".join(lines)
