"""The reproduction report: measured numbers beside the published ones, from JSON files only.

Inputs are the JSON results the pipeline's steps wrote under a workdir (see tfcdi/reproduce.py)
and ../shared/reference/paper_numbers.json (the only source of published numbers). Output:
report.md, report.json (everything the tables show, with the file each number came from) and the
figures, copied next to them.
"""

from __future__ import annotations

import json
import os
import shutil

from tfcdi.codec import operating_points

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PAPER_NUMBERS = os.path.join(REPO_ROOT, "..", "shared", "reference",
                                     "paper_numbers.json")


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


def write_report(workdir: str, preset: str, out_dir: str, paper_numbers: str | None = None):
  """Renders report.md / report.json from the workdir's results; returns report.md's path."""
  paper = load_paper_numbers(paper_numbers)
  os.makedirs(out_dir, exist_ok=True)
  data = {"preset": preset, "paper_numbers": os.path.abspath(paper_numbers or
                                                             DEFAULT_PAPER_NUMBERS)}
  lines = [f"# tfcdi reproduction report (preset: {preset})", "",
           "Every measured number below comes from a JSON file under the run's workdir "
           "(named in report.json); every published number from "
           "`shared/reference/paper_numbers.json`, labelled *published*.", ""]
  lines += flops_section(workdir, data)
  lines += codec_section(workdir, paper, data)
  figure = os.path.join(workdir, "rd", "rd_curve.png")
  if os.path.exists(figure):
    shutil.copyfile(figure, os.path.join(out_dir, "rd_curve.png"))
  lines += ["## Not yet in this report", "",
            "Classification (Table 2, Fig. 3), segmentation (Table 2, Fig. 5), joint training "
            "(Fig. 7) and the runtime benchmark (Fig. 6, Fig. 12) are not part of the pipeline "
            "yet.", ""]
  md_path = os.path.join(out_dir, "report.md")
  with open(md_path, "w") as f:
    f.write("\n".join(lines))
  with open(os.path.join(out_dir, "report.json"), "w") as f:
    json.dump(data, f, indent=2)
  return md_path
