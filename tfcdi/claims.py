"""The paper's claims, each checked on a run's measured numbers (the report's first section).

Every claim is the paper's own sentence (its section named), the published numbers behind it
(from paper_numbers.json), the test applied to this run's numbers, what was measured, and a
verdict:

  reproduced          every check of the claim holds on the measured numbers
  partly reproduced   some checks hold, some do not
  not reproduced      no check holds
  not measured yet    the steps that measure it have not finished

A verdict on fewer than all of a claim's checks says how many were measured. Where a claim is not
(fully) reproduced, `why` gives the reason this run has for it: what the preset changes from the
paper (scale_notes) and the measured facts that bear on it. The tests are stated in the report beside
each verdict, so that a reader can disagree with a threshold and still read the numbers.
"""

from __future__ import annotations

from tfcdi.codec import operating_points

# "Essentially as accurate" (Section 4.2) read as: within this many points, or better.
AS_ACCURATE_POINTS = 1.0

_DATASET_NAMES = {"camvid": "CamVid", "voc": "PASCAL VOC"}


def scale_notes(preset_name: str) -> dict:
  """What a preset changes from the paper's setting, read from its configs: the reasons a claim
  can fail at that preset, keyed by the part of the paper a claim is about. The paper preset
  (and an unknown one) has none."""
  # Imported here: the configs pull in TensorFlow, which rendering a report needs anyway.
  from tfcdi import reproduce  # pylint: disable=g-import-not-at-top
  from tfcdi.train import classifier, codec, joint, segmenter  # pylint: disable=g-import-not-at-top
  if preset_name not in reproduce.PRESETS or preset_name == "paper":
    return {}
  preset = reproduce.get_preset(preset_name)
  notes = {}
  if preset.codecs == "shipped":
    notes["codec"] = ("the shipped codecs of the cpu preset: first conv / trunk "
                      f"{'/'.join(map(str, codec.get_config('cpu').filters))} filters (paper: "
                      f"{'/'.join(map(str, codec.get_config('paper').filters))}) trained on Imagenette crops for a small fraction of the paper's "
                      "steps (BUILD_NOTES.md gives each point's training)")
  elif preset.codec_preset:
    config = codec.get_config(preset.codec_preset, num_steps=preset.codec_steps)
    notes["codec"] = (f"{preset.name} preset: codecs of {'/'.join(map(str, config.filters))} "
                      f"filters trained {config.num_steps} steps")
  if preset.classifier_preset:
    config = classifier.get_config(preset.classifier_preset)
    notes["classification"] = (
        f"{preset.name} preset: Imagenette (10 classes), nets at {config.width_multiplier:g} "
        f"width{' and shortened' if config.max_units_per_stage else ''}, trained "
        f"{config.epochs} epochs from scratch (paper: ImageNet, 1000 classes, full width); one "
        "seed per arm, so a gap of about a point is within run-to-run spread")
  if preset.segmenter_preset:
    config = segmenter.get_config(preset.segmenter_preset)
    start = "from scratch"
    if preset.classifier_preset:
      classifier_config = classifier.get_config(preset.classifier_preset)
      if (classifier_config.width_multiplier == config.width_multiplier
          and not classifier_config.max_units_per_stage):
        start = "from each arm's Imagenette classifier"
    notes["segmentation"] = (
        f"{preset.name} preset: {_DATASET_NAMES.get(preset.segmentation_dataset)}, nets at "
        f"{config.width_multiplier:g} width trained {config.num_steps} steps {start} (paper: "
        "PASCAL VOC + SBD, full width, started from the ImageNet classifiers); one seed per arm")
  if preset.joint_preset:
    config = joint.get_config(preset.joint_preset)
    notes["joint"] = (f"{preset.name} preset: {config.epochs} epochs of "
                      f"{config.steps_per_epoch or 'all'} steps per arm on Imagenette, the "
                      "classification preset's cResNet-51; one seed per arm")
  if preset.benchmark and preset.benchmark.get("width_multiplier", 1) != 1:
    notes["benchmark"] = (f"{preset.name} preset: nets at {preset.benchmark['width_multiplier']:g} "
                          "width on small inputs, where fixed per-call costs outweigh the "
                          "multiply-adds")
  return notes


def _verdict(checks: list) -> str:
  """checks: True / False / None (not measured) per check of one claim."""
  known = [c for c in checks if c is not None]
  if not known:
    return "not measured yet"
  verdict = ("reproduced" if all(known) else "not reproduced" if not any(known)
             else "partly reproduced")
  if len(known) < len(checks):
    verdict += f" ({len(known)} of {len(checks)} checks measured)"
  return verdict


def _signed(value, digits=2) -> str:
  return "—" if value is None else f"{value:+.{digits}f}"


def _claim(claim_id, section, claim, published, test, checks, measured, why_if_failed,
           scale_note):
  verdict = _verdict(checks)
  why = ""
  if verdict != "reproduced" and not verdict.startswith("not measured"):
    why = "; ".join(part for part in (why_if_failed, scale_note) if part)
  elif verdict.startswith("reproduced ("):
    why = "the rest is not measured yet"
  return {"id": claim_id, "section": section, "claim": claim, "published": published,
          "test": test, "measured": measured, "checks": checks, "verdict": verdict, "why": why}


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


def _row(summary, published, op, net, input_kind, metric):
  """(measured, published) `metric` of one Table 2 arm; measured only once its run completed."""
  paper_row = published.get((op, net)) or {}
  for r in (summary or {}).get("rows", []):
    if (r["operating_point"], r["net"], r["input"]) == (op, net, input_kind):
      m = r.get("measured") or {}
      return (m.get(metric) if m.get("complete") else None), paper_row.get(metric)
  return None, paper_row.get(metric)


def _classification_claims(data, paper, notes):
  from tfcdi import report  # pylint: disable=g-import-not-at-top  (report imports this module)
  summary = data.get("classification")
  table2 = report.published_table2(paper)
  _row_of = lambda *key: _row(summary, table2, *key)  # noqa: E731
  checks, measured, published = [], [], []
  for op in operating_points.OPERATING_POINTS:
    gaps = {}
    for metric in ("top1", "top5"):
      latent, latent_pub = _row_of(op, "cresnet51", "latent", metric)
      rgb, rgb_pub = _row_of(op, "resnet50", "decoded", metric)
      gaps[metric] = (None if latent is None or rgb is None else latent - rgb,
                      None if latent_pub is None or rgb_pub is None else latent_pub - rgb_pub)
    (top1, _), (top5, top5_pub) = gaps["top1"], gaps["top5"]
    published.append(f"{op}: {_signed(top5_pub)}")
    if top1 is None or top5 is None:
      checks.append(None)
      measured.append(f"{op}: not measured")
      continue
    checks.append(top1 >= -AS_ACCURATE_POINTS and top5 >= -AS_ACCURATE_POINTS)
    measured.append(f"{op}: top-1 {_signed(top1)}, top-5 {_signed(top5)}")
  claims = [_claim(
      "classification_as_accurate", "4.2, Table 2, Fig. 3",
      "Classification from the compressed representation is essentially as accurate as from "
      "the decoded images (after re-training on them).",
      "cResNet-51 minus ResNet-50 on decoded RGB, top-5 points (ImageNet): " + "; ".join(published),
      f"cResNet-51 minus ResNet-50 on decoded RGB at least -{AS_ACCURATE_POINTS:g} point in "
      "top-1 and in top-5, at each point",
      checks, "; ".join(measured), "", notes.get("classification"))]
  # "competitive with that obtained for the original images" (Section 4.2), at 0.635 bpp.
  latent, latent_pub = _row_of("0.635", "cresnet51", "latent", "top5")
  original, original_pub = _row_of("original", "resnet50", "original", "top5")
  gap = None if latent is None or original is None else latent - original
  gap_pub = None if latent_pub is None or original_pub is None else latent_pub - original_pub
  claims.append(_claim(
      "classification_vs_original", "4.2",
      "At 0.635 bpp, top-5 from the compressed representation is competitive with that from "
      "the original images.",
      f"cResNet-51 at 0.635 minus ResNet-50 on the original images: {_signed(gap_pub)} top-5 "
      "points (ImageNet)",
      f"the measured gap at least the published one minus {AS_ACCURATE_POINTS:g} point",
      [None if gap is None or gap_pub is None else gap >= gap_pub - AS_ACCURATE_POINTS],
      "not measured" if gap is None else f"{_signed(gap)} top-5 points", "",
      notes.get("classification")))
  return claims


def _comparison(data, path, baseline):
  for c in (data.get("benchmark") or {}).get("comparisons", []):
    if c["path"] == path and c["baseline"] == baseline:
      return c
  return None


def _runtime_spread(found, goal) -> str:
  """Whether each shortfall is inside the run's own spread (its best round reaches the goal)."""
  parts = []
  for path, c in found:
    if c is None or c["meets_goal_multiply_add_ratio"]:
      continue
    reach = c["speedup_max"] >= goal * c["multiply_add_ratio"]
    parts.append(f"{path}'s best round {'reaches' if reach else 'stays below'} the goal "
                 f"({c['speedup_min']:.2f}x-{c['speedup_max']:.2f}x over rounds)")
  return "; ".join(parts)


def _benchmark_claims(data, notes):
  from tfcdi import benchmark  # pylint: disable=g-import-not-at-top  (TF, only when rendering)
  pairs = (("cresnet51", "decoder+resnet50"), ("cresnet39", "decoder+resnet50"))
  found = [(path, _comparison(data, path, base)) for path, base in pairs]
  # The ratio of the graphs' counts: from the Table 1 step when it ran, else the benchmark's.
  counts = {r["model"]: r["measured_1e9"] for r in (data.get("flops") or {}).get("rows", [])}
  ratios = []
  for path, c in found:
    if {"decoder", "resnet50", path} <= set(counts):
      ratios.append((path, (counts["decoder"] + counts["resnet50"]) / counts[path]))
    else:
      ratios.append((path, None if c is None else c["multiply_add_ratio"]))
  ops = _claim(
      "fewer_operations", "1, 4.2 (Table 1, Fig. 6)",
      "Classification from the representation needs 1.5x-2x fewer operations than decoding the "
      "image and applying the original classifier.",
      "decoder + ResNet-50 over cResNet-51 1.75x, over cResNet-39 2.27x (published Table 1 counts)",
      "multiply-add ratio of decoder + ResNet-50 over each cResNet, counted on the built graphs, "
      "at least 1.5x",
      [None if ratio is None else ratio >= 1.5 for _, ratio in ratios],
      "; ".join(f"{path}: " + ("not measured" if ratio is None else f"{ratio:.2f}x")
                for path, ratio in ratios), "", "")
  runtime = _claim(
      "runtime_follows_operations", "A.9 (Figs. 6, 12)",
      "The saving in operations is a saving in inference time.",
      "speed-ups over decoder + ResNet-50 at the multiply-add ratios above (published counts)",
      f"measured speed-up at least {benchmark.GOAL_FRACTION:.0%} of the multiply-add ratio, "
      "for each cResNet",
      [None if c is None else bool(c["meets_goal_multiply_add_ratio"]) for _, c in found],
      "; ".join(f"{path}: " + ("not measured" if c is None else
                               f"{c['speedup']:.2f}x of {c['multiply_add_ratio']:.2f}x "
                               f"({c['fraction_of_multiply_add_ratio']:.0%})")
                for path, c in found),
      _runtime_spread(found, benchmark.GOAL_FRACTION), notes.get("benchmark"))
  return [ops, runtime]


def _segmentation_claims(data, notes):
  gaps = {g["operating_point"]: g
          for g in (data.get("segmentation") or {}).get("latent_vs_decoded", [])}

  def part(ops, test):
    checks, measured, published = [], [], []
    for op in ops:
      g = gaps.get(op) or {}
      published.append(f"{op}: {_signed(g.get('published_voc'))}")
      if g.get("measured") is None:
        checks.append(None)
        measured.append(f"{op}: not measured")
      else:
        checks.append(test(g["measured"]))
        measured.append(f"{op}: {_signed(g['measured'])}")
    return checks, "; ".join(measured), "; ".join(published)

  checks, measured, published = part(("0.0983",), lambda gap: gap > 0)
  aggressive = _claim(
      "segmentation_better_at_low_rate", "5.3, Table 2, Fig. 4",
      "At the aggressive rate (0.0983 bpp), segmentation from the representation is more "
      "accurate than from the decoded images.",
      "cResNet-51-d minus ResNet-50-d on decoded RGB, mIoU points (VOC): " + published,
      "the measured gap above zero", checks, measured, "", notes.get("segmentation"))
  checks, measured, published = part(("0.330", "0.635"),
                                     lambda gap: gap >= -AS_ACCURATE_POINTS)
  moderate = _claim(
      "segmentation_as_accurate", "5.3, Table 2",
      "At moderate rates, segmentation from the representation is as accurate as from the "
      "decoded images.",
      "cResNet-51-d minus ResNet-50-d on decoded RGB, mIoU points (VOC): " + published,
      f"the measured gap at least -{AS_ACCURATE_POINTS:g} point, at each point",
      checks, measured, "", notes.get("segmentation"))
  return [aggressive, moderate]


def _joint_claims(data, paper, notes):
  points = {p["operating_point"]: p for p in (data.get("joint") or {}).get("points", [])}
  gain = paper["claims"]["joint_training_gain_0.0983"]
  ops = [op for op in operating_points.OPERATING_POINTS if op in ("0.0983", "0.635")]

  def change(op, key):
    return (((points.get(op) or {}).get("changes") or {}).get(key) or {}).get("value")

  def per_point(key, test, fmt):
    checks, measured = [], []
    for op in ops:
      value = change(op, key) if isinstance(key, str) else key(op)
      checks.append(None if value is None else test(value))
      measured.append(f"{op}: " + ("not measured" if value is None else fmt(value)))
    return checks, "; ".join(measured)

  claims = []
  checks, measured = per_point("joint_vs_compression_ft_top5_points", lambda d: d > 0,
                               lambda d: f"{_signed(d)} top-5 points")
  claims.append(_claim(
      "joint_beats_compression_ft_classification", "6.2, Fig. 7",
      "Joint fine-tuning of codec and classifier improves classification beyond fine-tuning the "
      "codec alone (the control).",
      f"joint ft. minus compression ft. at 0.0983: +{gain['classification_top5_points']} top-5 "
      "points (published)", "joint ft. minus compression ft. above zero, at each point",
      checks, measured, "", notes.get("joint")))
  checks, measured = per_point("joint_vs_compression_ft_miou_points", lambda d: d > 0,
                               lambda d: f"{_signed(d)} mIoU points")
  claims.append(_claim(
      "joint_beats_compression_ft_segmentation", "6.2, Fig. 7",
      "... and segmentation, after cResNet-51-d is trained from each arm's classifier.",
      f"joint ft. minus compression ft. at 0.0983: +{gain['segmentation_miou_points']} mIoU "
      "points (published)", "joint ft. minus compression ft. above zero, at each point",
      checks, measured, "", notes.get("joint")))

  def ms_ssim_gain_over_control(op):
    joint, control = (change(op, f"{arm}_kodak_ms_ssim") for arm in ("joint_ft",
                                                                      "compression_ft"))
    return None if joint is None or control is None else joint - control

  checks_up, measured_up = per_point(
      lambda op: None if change(op, "joint_ft_kodak_ssim") is None else
      (change(op, "joint_ft_kodak_ssim"), change(op, "joint_ft_kodak_ms_ssim")),
      lambda v: v[0] > 0 and v[1] > 0,
      lambda v: f"SSIM {_signed(v[0], 4)}, MS-SSIM {_signed(v[1], 4)}")
  checks_more, measured_more = per_point(ms_ssim_gain_over_control, lambda d: d > 0,
                                         lambda d: f"{_signed(d, 4)} MS-SSIM over the control")
  claims.append(_claim(
      "joint_improves_codec", "6.2, A.7 (Fig. 11)",
      "Joint training increases the codec's SSIM and MS-SSIM by a small amount, and more than "
      "compression ft. does.",
      "Fig. 11 (no table of numbers published)",
      "joint ft. raises SSIM and MS-SSIM on Kodak, and raises MS-SSIM more than compression "
      "ft., at each point", checks_up + checks_more,
      f"{measured_up}; {measured_more}",
      "the paper compares the arms at the same bpp; here each arm's rate moved as it trained "
      "(the joint table gives the bpp)", notes.get("joint")))
  return claims


def _storage_claim(data, paper):
  storage = paper["claims"]["imagenet_storage_gb"]
  stores = [s for s in (data.get("classification") or {}).get("stores", [])
            if s["operating_point"] == "0.635" and (s.get("totals") or {}).get("ratio")]
  ratio = stores[0]["totals"]["ratio"] if stores else None
  return _claim(
      "storage", "4.2",
      "At 0.635 bpp the dataset takes 5.8x less storage than the original JPEGs.",
      f"ImageNet: {storage['original']} GB -> {storage['at_0.635_bpp']} GB, {storage['ratio']}x "
      "(published)", f"the latent store at 0.635 at least {storage['ratio']}x smaller than its "
      "source JPEGs", [None if ratio is None else ratio >= storage["ratio"]],
      "not measured" if ratio is None else f"{ratio:.2f}x",
      "the ratio is a property of the source files: Imagenette's JPEGs are small 224-px "
      "images at a far lower rate than ImageNet's full-size photos, so there is less to save",
      "")


def check_claims(data: dict, paper: dict, preset: str) -> list[dict]:
  """Every claim checked on a report's data (report.json's sections), in the paper's order."""
  notes = scale_notes(preset)
  return (_codec_claims(data, notes) + [_flops_claim(data)] + _classification_claims(data, paper, notes)
          + [_storage_claim(data, paper)] + _benchmark_claims(data, notes)
          + _segmentation_claims(data, notes) + _joint_claims(data, paper, notes))


def claims_markdown(claims: list[dict]) -> list[str]:
  """The claims as the report's first section."""
  counts = {}
  for c in claims:
    base = c["verdict"].split(" (")[0]
    counts[base] = counts.get(base, 0) + 1
  lines = ["## The paper's claims, checked", "",
           "Each claim in the paper's words, the published numbers behind it, the test applied "
           "to this run's measurements and the verdict. *Why* gives the reasons where a claim "
           "is not (fully) reproduced. Tallies: " +
           ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
           "| claim (section) | published | test | measured | verdict | why |",
           "|---|---|---|---|---|---|"]
  for c in claims:
    cells = [f"{c['claim']} ({c['section']})", c["published"], c["test"], c["measured"],
             f"**{c['verdict']}**", c["why"] or ""]
    lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
  return lines + [""]
