"""Section 6 (Figs. 7 and 11): baseline, compression ft. (the control) and joint ft. per
operating point, each fine-tuned arm as the mean over its seeds."""

from __future__ import annotations

import glob
import os
import re

from tfcdi.codec import operating_points
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

# Section 6's segmentation step: cResNet-51-d trained from each arm's classifier on that arm's
# codec, in folders named <arm>_<operating point>[_seed<N>] (e.g. joint_ft_0.0983).
JOINT_SEGMENTATION_ARMS = ("baseline", "compression_ft", "joint_ft")
JOINT_ARMS = ("joint", "codec", "classifier")
_KODAK = ("bpp", "psnr", "ssim", "ms_ssim")
_SEED_FOLDER = re.compile(r"^(?P<op>.+?)(_seed(?P<seed>\d+))?$")


def joint_segmentation_files(folder: str) -> dict:
  """{(operating point, arm): [results.json, ...] in seed order} of the segmenters under
  `folder`/<arm>_<op>[_seed<N>]/."""
  found = {}
  for path in sorted(glob.glob(os.path.join(folder, "*", "results.json"))):
    name = os.path.basename(os.path.dirname(path))
    for arm in JOINT_SEGMENTATION_ARMS:
      if not name.startswith(arm + "_"):
        continue
      match = _SEED_FOLDER.match(name[len(arm) + 1:])
      if match and match["op"] in operating_points.OPERATING_POINTS:
        found.setdefault((match["op"], arm), []).append((int(match["seed"] or 0), path))
  return {key: [p for _, p in sorted(paths)] for key, paths in found.items()}


def _accuracy(evaluation: dict | None) -> dict:
  if not evaluation or "top1" not in evaluation:
    return {"top1": None, "top5": None}
  return {"top1": 100.0 * evaluation["top1"], "top5": 100.0 * evaluation["top5"]}


def _over_seeds(runs: list[dict], value_of, metrics) -> dict:
  """{metric: mean, <metric>_range, num_seeds} of value_of(result) over an arm's seed runs."""
  if not runs:
    return {m: None for m in metrics}
  measured = [{"seed": results_lib.seed_of(run["result"]),
               "complete": bool(run["result"].get("complete", True)),
               **value_of(run["result"])} for run in runs]
  summary = seeds_lib.aggregate(measured, metrics)
  keep = {m: summary[m] for m in metrics}
  if len(runs) > 1:
    keep.update({f"{m}_range": summary[f"{m}_range"] for m in metrics})
  keep["num_seeds"] = summary["num_seeds"]
  return keep


def _segmentation_miou(paths, op_name: str) -> dict:
  """mIoU of an arm's segmenters (one per seed), mean and range over the finished ones."""
  paths = [paths] if isinstance(paths, str) else list(paths or [])
  runs = []
  for path in paths:
    result = results_lib.read_json(path)
    if result is None:
      continue
    if result.get("operating_point") != op_name:
      raise ValueError(f"{path} is a segmenter at {result.get('operating_point')}, not "
                       f"{op_name}")
    done = result.get("steps") == result["config"]["num_steps"] and "miou" in result
    runs.append({"seed": results_lib.seed_of(result), "complete": done,
                 "miou": 100.0 * result["miou"] if done else None, "path": path,
                 "init_from": result.get("init_from")})
  if not runs:
    return {"miou": None}
  summary = seeds_lib.aggregate(runs, ("miou",))
  out = {"miou": summary["miou"] if any(r["complete"] for r in runs) else None,
         "miou_source": runs[0]["path"], "miou_init_from": runs[0]["init_from"]}
  if len(runs) > 1:
    out.update(miou_range=summary["miou_range"], miou_num_seeds=summary["num_seeds"],
               miou_seed_sources=[r["path"] for r in runs])
  return out


def relative_miou_sources(point: dict, start: str) -> None:
  for key in JOINT_SEGMENTATION_ARMS:
    entry = point[key]
    if entry.get("miou_source"):
      entry["miou_source"] = os.path.relpath(entry["miou_source"], start)
    if entry.get("miou_seed_sources"):
      entry["miou_seed_sources"] = [os.path.relpath(p, start) for p in entry["miou_seed_sources"]]


def relative_sources(point: dict, start: str) -> None:
  """A point's sources (and its seeds' and segmenters') relative to `start`."""
  point["sources"] = {k: os.path.relpath(v, start) for k, v in point["sources"].items()}
  if "seed_sources" in point:
    point["seed_sources"] = {k: [os.path.relpath(p, start) for p in v]
                             for k, v in point["seed_sources"].items()}
  relative_miou_sources(point, start)


def _seeds_of(entry: dict, key: str) -> int:
  return int(entry.get("miou_num_seeds" if key == "miou" else "num_seeds") or 1)


def _change(after: dict, before: dict, key: str) -> dict:
  """after - before in `key`, its direction, and the seed spread SPREAD_RULE reads it against.

  Seeds that all started from one baseline classifier give the baseline a range of 0, so only
  `after`'s seeds spread; seeds that started from classifiers of their own seeds spread both.
  """
  if after.get(key) is None or before.get(key) is None:
    value = None
  else:
    value = after[key] - before[key]
  return {"value": value, "direction": results_lib.direction(value),
          "seed_spread": seeds_lib.gap_spread(after, before, metric=key),
          "seeds": [_seeds_of(arm, key) for arm in (after, before)]}


def joint_summary(results_files: list[str], paper: dict,
                  segmentation_files: dict | None = None) -> dict:
  """Baseline, compression ft. (the control) and joint ft. per operating point.

  Args:
    results_files: results.json files of tfcdi-train-joint, any arms, operating points and
      seeds; at most one per (operating point, arm, seed).
    paper: the published numbers (load_paper_numbers()).
    segmentation_files: {(operating point, "baseline" | "compression_ft" | "joint_ft"):
      results.json of tfcdi-train-segmenter, or a list of them (one per seed)} for the
      segmentation step (joint_segmentation_files).

  Accuracy is top-1 / top-5 in percent on the whole validation split, measured by the same
  loop before and after fine-tuning; the codec's rate and quality are Kodak's, from real files.
  An arm with several seeds is the mean of its finished ones (with `<metric>_range`). Every
  change is reported with its measured direction, whatever the paper found.
  """
  runs = results_lib.index_runs(
      results_files, lambda r: (r["operating_point"], r["arm"], results_lib.seed_of(r)),
      "joint-training")
  by_op: dict = {}
  for (op_name, arm), seed_runs in results_lib.group_seeds(runs).items():
    by_op.setdefault(op_name, {})[arm] = seed_runs
  points = []
  for op_name in [n for n in operating_points.OPERATING_POINTS if n in by_op]:
    arms = by_op[op_name]
    first = {arm: arms[arm][0]["result"] if arm in arms else None for arm in JOINT_ARMS}
    joint, codec, control = (first[a] for a in JOINT_ARMS)
    # Each seed's baseline is the classifier its joint (and codec) arm started from: one shared
    # classifier, or the seed's own cResNet-51 (Table 2's seed runs, trained again).
    started = arms.get("joint") or arms.get("codec") or arms.get("classifier") or []
    start = started[0]["result"].get("start") if started else None
    kodak_start = next((r["kodak"]["start"] for r in (joint, codec)
                        if r and r.get("complete") and "kodak" in r), None)
    baseline = {**_over_seeds(started, lambda r: _accuracy(r.get("start")), ("top1", "top5")),
                "kodak": kodak_start,
                "first_seed_top1": _accuracy(start)["top1"]}  # set beside Table 2's seed 0
    finished = {arm: [r for r in arms.get(arm, []) if r["result"].get("complete")]
                for arm in JOINT_ARMS}

    def kodak(arm):
      with_kodak = [r for r in arms.get(arm, []) if (r["result"].get("kodak") or {}).get("final")]
      if not with_kodak:
        return None
      measured = _over_seeds(with_kodak, lambda r: {k: r["kodak"]["final"][k] for k in _KODAK},
                             _KODAK)
      images = with_kodak[0]["result"]["kodak"]["final"].get("num_images")
      return measured if images is None else {**measured, "num_images": images}

    compression_ft = {**_over_seeds(finished["classifier"], lambda r: _accuracy(r["final"]),
                                    ("top1", "top5")),
                      "from_scratch": _over_seeds(
                          arms.get("classifier", []),
                          lambda r: _accuracy(r["base_classifier"]["final"]), ("top1", "top5")),
                      "kodak": kodak("codec")}
    joint_ft = {**_over_seeds(finished["joint"], lambda r: _accuracy(r["final"]),
                              ("top1", "top5")),
                "kodak": kodak("joint")}
    for arm, entry in (("baseline", baseline), ("compression_ft", compression_ft),
                       ("joint_ft", joint_ft)):
      entry.update(_segmentation_miou((segmentation_files or {}).get((op_name, arm)), op_name))
    changes = {}
    for name, after in (("compression_ft", compression_ft), ("joint_ft", joint_ft)):
      for key in ("top1", "top5", "miou"):
        changes[f"{name}_{key}_points"] = _change(after, baseline, key)
      for key in _KODAK:
        d = (None if not (after["kodak"] and baseline["kodak"]) else
             after["kodak"][key] - baseline["kodak"][key])
        # Every seed starts from the same codec, measured once: only the fine-tunings spread.
        changes[f"{name}_kodak_{key}"] = {
            "value": d, "direction": results_lib.direction(d),
            "seed_spread": seeds_lib.seed_range(after["kodak"], key),
            "seeds": [seeds_lib.num_seeds(after["kodak"]), 1]}
    # The paper states its classification gain in top-5 points; top-1 is reported beside it.
    for key in ("top1", "top5", "miou"):
      changes[f"joint_vs_compression_ft_{key}_points"] = _change(joint_ft, compression_ft, key)
    if joint_ft["kodak"] and compression_ft["kodak"]:
      changes["joint_vs_compression_ft_kodak_ms_ssim"] = _change(
          joint_ft["kodak"], compression_ft["kodak"], "ms_ssim")
    config = (joint or control or codec or {}).get("config") or {}
    point = {
        "operating_point": op_name,
        "val_examples": (start or {}).get("examples"),
        "baseline": baseline, "compression_ft": compression_ft, "joint_ft": joint_ft,
        "changes": changes,
        "arms_done": sorted(a for a in JOINT_ARMS if finished[a]),
        "sources": {a: v[0]["file"] for a, v in arms.items()},
        "commands": {a: v[0]["result"].get("command") for a, v in arms.items()},
        # What the fine-tuning was (the claims' scale notes) and the view its loop evaluates.
        "config": {k: config.get(k) for k in ("epochs", "steps_per_epoch", "view_size", "crop")},
    }
    if any(len(v) > 1 for v in arms.values()):
      point["seed_sources"] = {a: [r["file"] for r in v] for a, v in arms.items()}
    points.append(point)
  gain = paper["claims"]["joint_training_gain_0.0983"]
  return {"points": points,
          "published": {"joint_vs_compression_ft_0.0983": {
              "classification_top5_points": gain["classification_top5_points"],
              "segmentation_miou_points": gain["segmentation_miou_points"]},
              "hyperparameters": paper["training"]["joint"]}}


def baseline_note(point: dict, classification_rows: list[dict]) -> str | None:
  """Says whether the baseline row is Table 2's number for the same classifier, and if not why:
  the joint loop evaluates its own view of the validation images (a crop of `view_size` encoded
  whole, the central latent of `crop`), which need not be the view Table 2's evaluation reads."""
  row = next((r for r in classification_rows
              if (r["operating_point"], r["net"], r["input"]) == (point["operating_point"],
                                                                  "cresnet51", "latent")), None)
  measured = (row or {}).get("measured") or {}
  top1 = point["baseline"].get("first_seed_top1", point["baseline"].get("top1"))
  if measured.get("top1") is None or top1 is None:
    return None
  seeds = ""
  if seeds_lib.num_seeds(point["baseline"]) > 1:
    seeds = (f" The row itself is the mean over {seeds_lib.num_seeds(point['baseline'])} seeds, "
             "each the classifier its seed's arms started from: a further seed starts from a "
             "cResNet-51 of its own seed, trained again where the seed ran (the same seed on "
             "another machine is not the same run, BUILD_NOTES.md).")
  table2 = measured.get("top1") if measured.get("num_seeds", 1) == 1 else None
  seed0 = next((s["top1"] for s in row.get("seed_runs", []) if s["seed"] == 0), table2)
  if seed0 is not None and abs(seed0 - top1) < 1e-9:
    return (f"The baseline row's seed 0 is Table 2's cResNet-51 at {point['operating_point']} "
            f"bpp (seed 0), evaluated the same way: top-1 {top1:.2f} in both.{seeds}")
  config = point.get("config") or {}
  return (f"The baseline's seed 0 is the classifier of Table 2's cResNet-51 row at "
          f"{point['operating_point']} bpp (seed 0: top-1 {seed0:.2f} there, {top1:.2f} here). "
          "The numbers differ because the joint loop evaluates its own view: the "
          f"{config.get('view_size')}-px view encoded whole and the central "
          f"{config.get('crop')}-px crop of its latent, on {point.get('val_examples')} validation "
          f"images; Table 2 reads the classifier's own evaluation crop on "
          f"{measured.get('val_examples')} images. Changes below are measured in the joint "
          f"loop's view, before against after.{seeds}")


def joint_markdown(summary: dict, title: str, classification_rows: list[dict] | None = None) -> str:
  lines = [f"# {title}", "",
           "Top-1 / top-5 (percent) of cResNet-51 on the latent, on the validation images "
           "counted under each point; codec metrics on Kodak from real .tfci files. "
           "*Compression ft.* is the paper's "
           "control: the codec fine-tuned alone, cResNet-51 trained from scratch on it, then "
           "fine-tuned with the same schedule. mIoU: cResNet-51-d started from each arm's "
           "classifier, on that arm's codec (the paper's segmentation step). An arm run with "
           "several seeds shows their mean (lowest-highest). Directions are as measured.", ""]
  for point in summary["points"]:
    rows = []
    for label, key in (("baseline", "baseline"), ("compression ft.", "compression_ft"),
                       ("joint ft.", "joint_ft")):
      entry = point[key]
      kodak = entry.get("kodak") or {}
      rows.append([label, seeds_lib.cell(entry, "top1"), seeds_lib.cell(entry, "top5"),
                   seeds_lib.cell(entry, "miou"), entry.get("num_seeds", 1),
                   kodak.get("bpp"), kodak.get("psnr"), kodak.get("ssim"), kodak.get("ms_ssim")])
    lines += [f"## {point['operating_point']} bpp", "",
              f"{point['val_examples']} validation images.", "",
              results_lib.table(["", "top-1", "top-5", "mIoU (CamVid)", "seeds", "Kodak bpp",
                                 "PSNR", "SSIM", "MS-SSIM"],
                                [[c if not isinstance(c, float) else round(c, 4) for c in r]
                                 for r in rows]), ""]
    note = baseline_note(point, classification_rows or [])
    if note:
      lines += [note, ""]
    scratch = point["compression_ft"].get("from_scratch") or {}
    if scratch.get("top1") is not None:
      count = seeds_lib.num_seeds(scratch)
      lines += [f"cResNet-51 from scratch on the compression-ft. codec, before its fine-tuning: "
                f"top-1 {seeds_lib.cell(scratch, 'top1')}, top-5 "
                f"{seeds_lib.cell(scratch, 'top5')} ({count} seed{'s' if count > 1 else ''}).", ""]
    change_rows = [[k, v["value"], v.get("seed_spread"), v["direction"]]
                   for k, v in point["changes"].items() if v["value"] is not None]
    if change_rows:
      lines += [results_lib.table(["change", "measured", "seed spread", "direction"],
                                  change_rows), ""]
    missing = sorted(set(JOINT_ARMS) - set(point["arms_done"]))
    if missing:
      lines += [f"Arms not finished: {', '.join(missing)}.", ""]
  pub = summary["published"]["joint_vs_compression_ft_0.0983"]
  lines += ["Published (ImageNet, 0.0983 bpp): joint ft. beats compression ft. by "
            f"{pub['classification_top5_points']} points of classification and "
            f"{pub['segmentation_miou_points']} points of mIoU.", ""]
  return "\n".join(lines)
