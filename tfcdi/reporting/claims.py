"""The paper's claims, each checked on a run's measured numbers (the report's first section).

Every claim is the paper's own sentence (its section named), the published numbers behind it
(from paper_numbers.json), the test applied to this run's numbers, what was measured, and a
verdict:

  reproduced          every decided check of the claim holds on the measured numbers
  partly reproduced   some decided checks hold, some do not
  not reproduced      no decided check holds
  inconclusive        every measured check lies inside the seed spread (seeds.SPREAD_RULE)
  not measured yet    the steps that measure it have not finished

A verdict on fewer than all of a claim's checks says how many were measured and how many were
inconclusive; a verdict on trained arms names the number of seeds behind it. Where a claim is
not (fully) reproduced, `why` gives the reason this run has for it: what the run changes from
the paper (scale_notes, read from the runs' own results) and the measured facts that bear on it.
The tests are stated in the report beside each verdict, so that a reader can disagree with a
threshold and still read the numbers. Nothing here reads a preset or a model: only the report's
data (report.json's sections) and the published numbers.
"""

from __future__ import annotations

from tfcdi.codec import operating_points
from tfcdi.reporting import published as published_lib
from tfcdi.reporting import seeds as seeds_lib
from tfcdi.reporting import width as width_lib

# "Essentially as accurate" (Section 4.2) read as: within this many points, or better.
AS_ACCURATE_POINTS = 1.0
# "The saving in operations is a saving in inference time" read as: a measured speed-up of at
# least this fraction of the multiply-add ratio (the runtime benchmark's own goal,
# tfcdi.benchmark.GOAL_FRACTION; a test keeps the two equal).
RUNTIME_GOAL_FRACTION = 0.9
# Presets whose runs only show that the pipeline runs (a few images, degenerate models): their
# verdicts are marked so, whatever they say.
PIPELINE_CHECK_PRESETS = ("smoke",)
# A workdir that tfcdi-reproduce ran with --max_steps holds this file ({"max_steps": N}): its
# runs stopped after N optimizer steps, so its verdicts are pipeline checks whatever the preset.
DRY_RUN_FILE = "dry_run.json"


def pipeline_check(preset: str, data: dict) -> str | None:
  """What makes a report's verdicts pipeline checks only ("smoke run", "dry run (--max_steps=1)"),
  or None for a measured run."""
  if data.get("dry_run"):
    return f"dry run (--max_steps={data['dry_run']['max_steps']})"
  if preset in PIPELINE_CHECK_PRESETS:
    return f"{preset} run"
  return None

_DATASET_NAMES = {"camvid": "CamVid", "voc": "PASCAL VOC"}


def _first_measured(rows, key):
  return next(((r.get("measured") or {}).get(key) for r in rows
               if (r.get("measured") or {}).get(key) is not None), None)


def scale_notes(preset_name: str, data: dict) -> dict:
  """What a run changes from the paper's setting, read from its own results (report.json's
  sections): the reasons a claim can fail at that run, keyed by the part of the paper a claim is
  about. The paper preset has none."""
  if preset_name == "paper":
    return {}
  notes = {}
  codecs = sorted({(r.get("measured") or {}).get("codec") for r in data.get("codec", [])} - {None})
  if codecs:
    notes["codec"] = (f"the {preset_name} preset's codecs ({', '.join(codecs)}): narrower than "
                      "the paper's and trained for a small fraction of its steps "
                      "(BUILD_NOTES.md gives each point's training)")
  rows = (data.get("classification") or {}).get("rows", [])
  width = _first_measured(rows, "width_multiplier")
  if width is not None:
    classes = _first_measured(rows, "num_classes")
    epochs = _first_measured(rows, "epochs")
    shortened = _first_measured(rows, "max_units_per_stage")
    notes["classification"] = (
        f"{preset_name} preset: {data.get('classification_dataset', 'the dataset')} "
        f"({classes} classes), nets at {width:g} width{' and shortened' if shortened else ''}, "
        f"trained {epochs} epochs from scratch (paper: ImageNet, 1000 classes, full width)")
  rows = (data.get("segmentation") or {}).get("rows", [])
  width = _first_measured(rows, "width_multiplier")
  if width is not None:
    started = _first_measured(rows, "init_from")
    names = {"camvid": "CamVid", "voc": "PASCAL VOC"}
    dataset = _first_measured(rows, "dataset")
    notes["segmentation"] = (
        f"{preset_name} preset: {names.get(dataset, dataset)}, nets at {width:g} width trained "
        f"{_first_measured(rows, 'num_steps')} steps "
        f"{'from each arm' + chr(39) + 's classifier' if started else 'from scratch'} (paper: "
        "PASCAL VOC + SBD, full width, started from the ImageNet classifiers)")
  points = (data.get("joint") or {}).get("points", [])
  config = next((p.get("config") for p in points if p.get("config")), None)
  if config:
    notes["joint"] = (f"{preset_name} preset: {config.get('epochs')} epochs of "
                      f"{config.get('steps_per_epoch') or 'all'} steps per arm, the "
                      "classification preset's cResNet-51")
  bench = (data.get("benchmark") or {}).get("config") or {}
  if bench.get("width_multiplier", 1) != 1:
    notes["benchmark"] = (f"{preset_name} preset: nets at {bench['width_multiplier']:g} width on "
                          "small inputs, where fixed per-call costs outweigh the multiply-adds")
  return notes


def _verdict(checks: list, seeds: list | None = None) -> str:
  """checks: True / False / seeds.INCONCLUSIVE / None (not measured) per check of one claim;
  seeds: the number of seeds of each arm behind the measured checks (None: not a trained arm)."""
  measured = [c for c in checks if c is not None]
  if not measured:
    return "not measured yet"
  decided = [c for c in measured if c != seeds_lib.INCONCLUSIVE]
  if not decided:
    verdict = seeds_lib.INCONCLUSIVE
  else:
    verdict = ("reproduced" if all(decided) else "not reproduced" if not any(decided)
               else "partly reproduced")
  notes = []
  if decided and len(decided) < len(measured):
    notes.append(f"{len(measured) - len(decided)} of {len(checks)} checks inconclusive")
  if len(measured) < len(checks):
    notes.append(f"{len(measured)} of {len(checks)} checks measured")
  if seeds:
    notes.append(seeds_lib.seeds_text(seeds))
  return verdict + (f" ({'; '.join(notes)})" if notes else "")


def _signed(value, digits=2) -> str:
  return "—" if value is None else f"{value:+.{digits}f}"


def _claim(claim_id, section, claim, published, test, checks, measured, why_if_failed,
           scale_note, seeds=None):
  """One claim's record; `seeds` lists the seeds of each arm behind its measured checks."""
  verdict = _verdict(checks, seeds)
  base = verdict.split(" (")[0]
  why = ""
  if base != "reproduced" and base != "not measured yet":
    why = "; ".join(part for part in (why_if_failed, scale_note) if part)
  elif base == "reproduced" and None in checks:
    why = "the rest is not measured yet"
  return {"id": claim_id, "section": section, "claim": claim, "published": published,
          "test": test, "measured": measured, "checks": checks, "verdict": verdict, "why": why,
          "seeds": seeds or None}


def _codec_claims(data, notes):
  claims = []
  records = {r["operating_point"]: r for r in data.get("codec", [])}
  for baseline, label in (("jpeg", "JPEG"), ("jpeg2000", "JPEG 2000")):
    checks, measured, behind = [], [], []
    for op in operating_points.OPERATING_POINTS:
      record = records.get(op)
      base = ((record or {}).get("baselines_at_same_bpp") or {}).get(baseline) or {}
      if not record or not base.get("in_range"):
        checks.append(None)
        measured.append(f"{op}: " + ("not measured" if not record else
                                     f"{label} does not reach {record['measured']['bpp']:.3f} bpp"))
        continue
      better = bool(base["learned_better"]["ms_ssim"])
      checks.append(better)
      if not better:
        behind.append(op)
      measured.append(f"{op}: {record['measured']['ms_ssim']:.4f} vs {base['ms_ssim']:.4f} "
                      f"at {record['measured']['bpp']:.3f} bpp")
    claims.append(_claim(
        f"codec_beats_{baseline}", "3.1, A.2 (Fig. 8)",
        f"The operating points outperform {label} on the perceptual metrics (MS-SSIM).",
        "ILSVRC2012, all three operating points",
        f"MS-SSIM on Kodak from real files above {label}'s at the same bpp, at each point",
        checks, "; ".join(measured),
        f"behind {label} at {', '.join(behind)} bpp" if behind else "", notes.get("codec")))
  return claims


def _flops_claim(data):
  rows = [r for r in (data.get("flops") or {}).get("rows", [])
          if r.get("published_1e9") is not None]
  off = [r for r in rows if not r.get("within_1pct")]
  why = ""
  if off:
    why = "off by more than 1%: " + ", ".join(f"{r['model']} ({r['relative_difference']:+.2%})"
                                              for r in off)
    if any(r["model"] == "decoder" for r in off):
      why += ("; the published decoder count cannot come from any mirror of the published "
              "encoder (BUILD_NOTES.md, the codec)")
  worst = max((abs(r["relative_difference"]) for r in rows), default=None)
  return _claim("table1_multiply_adds", "Table 1",
                "Multiply-adds of the five nets and of the codec (224x224 RGB, 28x28 latent).",
                ", ".join(f"{r['model']} {r['published_1e9']}e9" for r in rows) + " (published)"
                if rows else "Table 1",
                "each count from the built Keras graph within 1% of Table 1",
                [bool(r.get("within_1pct")) for r in rows] or [None],
                "not counted yet" if worst is None else
                f"{len(rows) - len(off)} of {len(rows)} within 1%; largest difference "
                f"{worst:.2%}", why, "")


def _arm(summary, published, op, net, input_kind):
  """(measured, published row) of one Table 2 arm; measured only once its runs completed."""
  paper_row = published.get((op, net)) or {}
  for r in (summary or {}).get("rows", []):
    if (r["operating_point"], r["net"], r["input"]) == (op, net, input_kind):
      m = r.get("measured") or {}
      return (m if m.get("complete") else None), paper_row
  return None, paper_row


def _gap(a: dict | None, b: dict | None, metric: str):
  """(mean of a - mean of b, seed spread of that gap) in `metric`; (None, None) if unmeasured."""
  if a is None or b is None or a.get(metric) is None or b.get(metric) is None:
    return None, None
  return a[metric] - b[metric], seeds_lib.gap_spread(a, b, metric=metric)


def _all_of(parts: list):
  """One check from several that must all hold: a failing one refutes, else an inconclusive one
  leaves it open."""
  return (False if False in parts else
          seeds_lib.INCONCLUSIVE if seeds_lib.INCONCLUSIVE in parts else True)


def _spread_text(spread, digits=2) -> str:
  return "" if spread is None else f" (seed spread {spread:.{digits}f})"


def _classification_claims(data, paper, notes):
  summary = data.get("classification")
  table2 = published_lib.published_table2(paper)
  checks, measured, published, seeds = [], [], [], []
  for op in operating_points.OPERATING_POINTS:
    latent, latent_pub = _arm(summary, table2, op, "cresnet51", "latent")
    rgb, rgb_pub = _arm(summary, table2, op, "resnet50", "decoded")
    top5_pub = (None if latent_pub.get("top5") is None or rgb_pub.get("top5") is None
                else latent_pub["top5"] - rgb_pub["top5"])
    published.append(f"{op}: {_signed(top5_pub)}")
    (top1, spread1), (top5, spread5) = (_gap(latent, rgb, m) for m in ("top1", "top5"))
    if top1 is None or top5 is None:
      checks.append(None)
      measured.append(f"{op}: not measured")
      continue
    seeds += [seeds_lib.num_seeds(latent), seeds_lib.num_seeds(rgb)]
    # Both metrics must hold.
    parts = [seeds_lib.decide(top1, -AS_ACCURATE_POINTS, spread1),
             seeds_lib.decide(top5, -AS_ACCURATE_POINTS, spread5)]
    checks.append(_all_of(parts))
    measured.append(f"{op}: top-1 {_signed(top1)}{_spread_text(spread1)}, top-5 "
                    f"{_signed(top5)}{_spread_text(spread5)}")
  # The width study's gaps at other widths than the runs above (the report's width section)
  # beside the verdict, which they do not decide: they say how the preset's width bears on it.
  own_width = _first_measured((summary or {}).get("rows", []), "width_multiplier")
  for gap in (data.get("width") or {}).get("gaps", []):
    if gap["width"] == own_width:
      continue
    measured.append(
        f"width study, {data['width']['operating_point']} at width "
        f"{width_lib.width_name(gap['width'])}: top-1 {_signed(gap.get('top1'))}"
        f"{_spread_text(gap['top1_spread'])}, top-5 {_signed(gap.get('top5'))}"
        f"{_spread_text(gap['top5_spread'])} ({' / '.join(map(str, gap['seeds']))} seeds)")
  claims = [_claim(
      "classification_as_accurate", "4.2, Table 2, Fig. 3",
      "Classification from the compressed representation is essentially as accurate as from "
      "the decoded images (after re-training on them).",
      "cResNet-51 minus ResNet-50 on decoded RGB, top-5 points (ImageNet): " + "; ".join(published),
      f"cResNet-51 minus ResNet-50 on decoded RGB at least -{AS_ACCURATE_POINTS:g} point in "
      "top-1 and in top-5, at each point",
      checks, "; ".join(measured), "", notes.get("classification"), seeds)]
  # "competitive with that obtained for the original images" (Section 4.2), at 0.635 bpp.
  latent, latent_pub = _arm(summary, table2, "0.635", "cresnet51", "latent")
  original, original_pub = _arm(summary, table2, "original", "resnet50", "original")
  gap, spread = _gap(latent, original, "top5")
  gap_pub = (None if latent_pub.get("top5") is None or original_pub.get("top5") is None
             else latent_pub["top5"] - original_pub["top5"])
  claims.append(_claim(
      "classification_vs_original", "4.2",
      "At 0.635 bpp, top-5 from the compressed representation is competitive with that from "
      "the original images.",
      f"cResNet-51 at 0.635 minus ResNet-50 on the original images: {_signed(gap_pub)} top-5 "
      "points (ImageNet)",
      f"the measured gap at least the published one minus {AS_ACCURATE_POINTS:g} point",
      [None if gap is None or gap_pub is None else
       seeds_lib.decide(gap, gap_pub - AS_ACCURATE_POINTS, spread)],
      "not measured" if gap is None else f"{_signed(gap)} top-5 points{_spread_text(spread)}",
      "", notes.get("classification"),
      None if gap is None else [seeds_lib.num_seeds(latent), seeds_lib.num_seeds(original)]))
  return claims


def _comparison(data, path, baseline):
  for c in (data.get("benchmark") or {}).get("comparisons", []):
    if c["path"] == path and c["baseline"] == baseline:
      return c
  return None


def _meets_goal(c: dict) -> bool:
  return c["speedup"] >= RUNTIME_GOAL_FRACTION * c["multiply_add_ratio"]


def _runtime_spread(found) -> str:
  """Whether each shortfall is inside the run's own spread (its best round reaches the goal)."""
  parts = []
  for path, c in found:
    if c is None or _meets_goal(c):
      continue
    reach = c["speedup_max"] >= RUNTIME_GOAL_FRACTION * c["multiply_add_ratio"]
    parts.append(f"{path}'s best round {'reaches' if reach else 'stays below'} the goal "
                 f"({c['speedup_min']:.2f}x-{c['speedup_max']:.2f}x over rounds)")
  return "; ".join(parts)


def _benchmark_claims(data, notes):
  pairs = (("cresnet51", "decoder+resnet50"), ("cresnet39", "decoder+resnet50"))
  found = [(path, _comparison(data, path, base)) for path, base in pairs]
  # The ratio of the graphs' counts: Table 1's full-width nets when that step ran, else the
  # benchmark's graphs. Each source is named: the benchmark may time narrower nets, whose ratio
  # is another number (a narrow net's cost shrinks, the decoder's does not).
  counts = {r["model"]: r["measured_1e9"] for r in (data.get("flops") or {}).get("rows", [])}
  width = ((data.get("benchmark") or {}).get("config") or {}).get("width_multiplier", 1)
  timed_graphs = "the timed graphs" + (f", nets at width {width:g}" if width != 1 else "")
  ratios = []
  for path, c in found:
    if {"decoder", "resnet50", path} <= set(counts):
      ratios.append((path, (counts["decoder"] + counts["resnet50"]) / counts[path],
                     "Table 1's full-width graphs"))
    else:
      ratios.append((path, None if c is None else c["multiply_add_ratio"], timed_graphs))
  sources = sorted({source for _, ratio, source in ratios if ratio is not None})
  ops = _claim(
      "fewer_operations", "1, 4.2 (Table 1, Fig. 6)",
      "Classification from the representation needs 1.5x-2x fewer operations than decoding the "
      "image and applying the original classifier.",
      "decoder + ResNet-50 over cResNet-51 1.75x, over cResNet-39 2.27x (published Table 1 counts)",
      "multiply-add ratio of decoder + ResNet-50 over each cResNet, counted on the built graphs, "
      "at least 1.5x",
      [None if ratio is None else ratio >= 1.5 for _, ratio, _ in ratios],
      "; ".join(f"{path}: " + ("not measured" if ratio is None else f"{ratio:.2f}x")
                for path, ratio, _ in ratios)
      + (f" (counted on {' and '.join(sources)})" if sources else ""), "", "")
  # Each net's speed-up is read against its own ratio, of the graphs that were timed.
  timed = [(path, c) for path, c in found if c is not None]
  runtime = _claim(
      "runtime_follows_operations", "A.9 (Figs. 6, 12)",
      "The saving in operations is a saving in inference time.",
      "speed-ups over decoder + ResNet-50 at the multiply-add ratios above (published counts)",
      f"measured speed-up at least {RUNTIME_GOAL_FRACTION:.0%} of the multiply-add ratio of the "
      "timed graphs, for each cResNet",
      [None if c is None else _meets_goal(c) for _, c in found],
      "; ".join(f"{path}: " + ("not measured" if c is None else
                               f"speed-up {c['speedup']:.2f}x, multiply-add ratio "
                               f"{c['multiply_add_ratio']:.2f}x "
                               f"({c['speedup'] / c['multiply_add_ratio']:.0%})")
                for path, c in found)
      + (f" (ratios of {timed_graphs})" if timed else ""),
      _runtime_spread(found), notes.get("benchmark"))
  return [ops, runtime]


def _segmentation_claims(data, notes):
  gaps = {g["operating_point"]: g
          for g in (data.get("segmentation") or {}).get("latent_vs_decoded", [])}

  def part(ops, threshold, strict):
    checks, measured, published, seeds = [], [], [], []
    for op in ops:
      g = gaps.get(op) or {}
      published.append(f"{op}: {_signed(g.get('published_voc'))}")
      if g.get("measured") is None:
        checks.append(None)
        measured.append(f"{op}: not measured")
      else:
        checks.append(seeds_lib.decide(g["measured"], threshold, g.get("seed_spread"), strict))
        measured.append(f"{op}: {_signed(g['measured'])}{_spread_text(g.get('seed_spread'))}")
        seeds += g.get("seeds") or [1, 1]
    return checks, "; ".join(measured), "; ".join(published), seeds

  checks, measured, published, seeds = part(("0.0983",), 0.0, strict=True)
  aggressive = _claim(
      "segmentation_better_at_low_rate", "5.3, Table 2, Fig. 4",
      "At the aggressive rate (0.0983 bpp), segmentation from the representation is more "
      "accurate than from the decoded images.",
      "cResNet-51-d minus ResNet-50-d on decoded RGB, mIoU points (VOC): " + published,
      "the measured gap above zero", checks, measured, "", notes.get("segmentation"), seeds)
  checks, measured, published, seeds = part(("0.330", "0.635"), -AS_ACCURATE_POINTS,
                                            strict=False)
  moderate = _claim(
      "segmentation_as_accurate", "5.3, Table 2",
      "At moderate rates, segmentation from the representation is as accurate as from the "
      "decoded images.",
      "cResNet-51-d minus ResNet-50-d on decoded RGB, mIoU points (VOC): " + published,
      f"the measured gap at least -{AS_ACCURATE_POINTS:g} point, at each point",
      checks, measured, "", notes.get("segmentation"), seeds)
  return [aggressive, moderate]


def _joint_claims(data, paper, notes):
  points = {p["operating_point"]: p for p in (data.get("joint") or {}).get("points", [])}
  gain = paper["claims"]["joint_training_gain_0.0983"]
  ops = [op for op in operating_points.OPERATING_POINTS if op in ("0.0983", "0.635")]

  def change_of(op, key):
    return ((points.get(op) or {}).get("changes") or {}).get(key) or {}

  def change(op, key):
    return change_of(op, key).get("value")

  def seeded(key, fmt, digits=2):
    """A joint-vs-control gap per point, decided by SPREAD_RULE against zero."""
    checks, measured, seeds = [], [], []
    for op in ops:
      c = change_of(op, key)
      if c.get("value") is None:
        checks.append(None)
        measured.append(f"{op}: not measured")
        continue
      checks.append(seeds_lib.decide(c["value"], 0.0, c.get("seed_spread"), strict=True))
      measured.append(f"{op}: {fmt(c['value'])}{_spread_text(c.get('seed_spread'), digits)}")
      seeds += c.get("seeds") or [1, 1]
    return checks, "; ".join(measured), seeds

  claims = []
  checks, measured, seeds = seeded("joint_vs_compression_ft_top5_points",
                                   lambda d: f"{_signed(d)} top-5 points")
  claims.append(_claim(
      "joint_beats_compression_ft_classification", "6.2, Fig. 7",
      "Joint fine-tuning of codec and classifier improves classification beyond fine-tuning the "
      "codec alone (the control).",
      f"joint ft. minus compression ft. at 0.0983: +{gain['classification_top5_points']} top-5 "
      "points (published)", "joint ft. minus compression ft. above zero, at each point",
      checks, measured, "", notes.get("joint"), seeds))
  checks, measured, seeds = seeded("joint_vs_compression_ft_miou_points",
                                   lambda d: f"{_signed(d)} mIoU points")
  claims.append(_claim(
      "joint_beats_compression_ft_segmentation", "6.2, Fig. 7",
      "... and segmentation, after cResNet-51-d is trained from each arm's classifier.",
      f"joint ft. minus compression ft. at 0.0983: +{gain['segmentation_miou_points']} mIoU "
      "points (published)", "joint ft. minus compression ft. above zero, at each point",
      checks, measured, "", notes.get("joint"), seeds))

  # The codec's changes on Kodak, each decided by SPREAD_RULE against zero: a rise inside the
  # fine-tunings' seed spread is inconclusive.
  checks_up, measured_up, seeds_up = [], [], []
  for op in ops:
    ssim, ms_ssim = (change_of(op, f"joint_ft_kodak_{m}") for m in ("ssim", "ms_ssim"))
    if ssim.get("value") is None or ms_ssim.get("value") is None:
      checks_up.append(None)
      measured_up.append(f"{op}: not measured")
      continue
    parts = [seeds_lib.decide(c["value"], 0.0, c.get("seed_spread"), strict=True)
             for c in (ssim, ms_ssim)]
    checks_up.append(_all_of(parts))
    measured_up.append(f"{op}: SSIM {_signed(ssim['value'], 4)}"
                       f"{_spread_text(ssim.get('seed_spread'), 4)}, MS-SSIM "
                       f"{_signed(ms_ssim['value'], 4)}"
                       f"{_spread_text(ms_ssim.get('seed_spread'), 4)}")
    seeds_up += ms_ssim.get("seeds") or [1, 1]
  checks_more, measured_more, seeds_more = seeded(
      "joint_vs_compression_ft_kodak_ms_ssim",
      lambda d: f"{_signed(d, 4)} MS-SSIM over the control", digits=4)
  claims.append(_claim(
      "joint_improves_codec", "6.2, A.7 (Fig. 11)",
      "Joint training increases the codec's SSIM and MS-SSIM by a small amount, and more than "
      "compression ft. does.",
      "Fig. 11 (no table of numbers published)",
      "joint ft. raises SSIM and MS-SSIM on Kodak, and raises MS-SSIM more than compression "
      "ft., at each point", checks_up + checks_more,
      f"{'; '.join(measured_up)}; {measured_more}",
      "the paper compares the arms at the same bpp; here each arm's rate moved as it trained "
      "(the joint table gives the bpp)", notes.get("joint"), seeds_up + seeds_more))
  return claims


def _storage_claim(data, paper):
  """The paper's 5.8x is a property of full-size photos stored whole: only a measurement on such
  photos tests it. The latent store of small re-saved JPEGs is reported beside it, as context."""
  storage = paper["claims"]["imagenet_storage_gb"]
  full_size = next((m for m in data.get("storage", [])
                    if m.get("operating_point") == "0.635" and m.get("ratio")), None)
  stores = [s for s in (data.get("classification") or {}).get("stores", [])
            if s["operating_point"] == "0.635" and (s.get("totals") or {}).get("ratio")]
  store_ratio = stores[0]["totals"]["ratio"] if stores else None
  parts = []
  if full_size:
    parts.append(f"{full_size['images']} full-size ImageNet photos, each coded at its own size: "
                 f"{full_size['ratio']:.2f}x, {full_size['mean_tfci_bytes'] / 1000:.1f} kB per "
                 f"image, {full_size['bpp']:.3f} bpp (tests the claim)")
  else:
    parts.append("full-size photos: not measured (tools/storage_check.py)")
  if store_ratio is not None:
    parts.append(f"the {data.get('classification_dataset', 'classification')} latent store: "
                 f"{store_ratio:.2f}x ({stores[0].get('image_size')}-px views of its JPEGs, not "
                 "full-size photos: does not test it)")
  ratio = None if full_size is None else full_size["ratio"]
  return _claim(
      "storage", "4.2",
      "At 0.635 bpp the dataset takes 5.8x less storage than the original JPEGs.",
      f"ImageNet: {storage['original']} GB -> {storage['at_0.635_bpp']} GB, {storage['ratio']}x "
      "(published)",
      f"full-size ImageNet photos coded whole at 0.635 at least {storage['ratio']}x smaller than "
      "their JPEGs", [None if ratio is None else ratio >= storage["ratio"]],
      "; ".join(parts),
      "the ratio is a property of the source photos (their size and JPEG rate); the sample is "
      "53 photos, not the 1.28 million of the paper's count", "")


def check_claims(data: dict, paper: dict, preset: str) -> list[dict]:
  """Every claim checked on a report's data (report.json's sections), in the paper's order.

  A preset in PIPELINE_CHECK_PRESETS, or a dry run, gets every verdict marked: its runs show
  that the pipeline runs, not what the paper claims."""
  notes = scale_notes(preset, data)
  claims = (_codec_claims(data, notes) + [_flops_claim(data)]
            + _classification_claims(data, paper, notes) + [_storage_claim(data, paper)]
            + _benchmark_claims(data, notes) + _segmentation_claims(data, notes)
            + _joint_claims(data, paper, notes))
  if check := pipeline_check(preset, data):
    for claim in claims:
      claim["pipeline_check_only"] = True
      claim["verdict"] += f" [{check}: pipeline check only]"
  return claims


def claims_markdown(claims: list[dict]) -> list[str]:
  """The claims as the report's first section."""
  counts = {}
  for c in claims:
    base = c["verdict"].split(" [")[0].split(" (")[0]
    counts[base] = counts.get(base, 0) + 1
  lines = ["## The paper's claims, checked", "",
           "Each claim in the paper's words, the published numbers behind it, the test applied "
           "to this run's measurements and the verdict. *Why* gives the reasons where a claim "
           "is not (fully) reproduced.", "",
           f"**The spread rule.** {seeds_lib.SPREAD_RULE}", "",
           "Tallies: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
           "| claim (section) | published | test | measured | verdict | why |",
           "|---|---|---|---|---|---|"]
  for c in claims:
    cells = [f"{c['claim']} ({c['section']})", c["published"], c["test"], c["measured"],
             f"**{c['verdict']}**", c["why"] or ""]
    lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
  return lines + [""]
