"""The published numbers: shared/reference/paper_numbers.json, and the views the tables take of it.

Nothing here is measured. Every number that leaves this module is the paper's, and the tables
label it *published*.
"""

from __future__ import annotations

import json
import os

from tfcdi.codec import operating_points

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PAPER_NUMBERS = os.path.join(REPO_ROOT, "..", "shared", "reference",
                                     "paper_numbers.json")


def load_paper_numbers(path: str | None = None) -> dict:
  path = path or os.environ.get("TFCDI_PAPER_NUMBERS", DEFAULT_PAPER_NUMBERS)
  if not os.path.exists(path):
    raise ValueError(f"published numbers not found at {path}; set TFCDI_PAPER_NUMBERS")
  with open(path) as f:
    return json.load(f)


def published_table2(paper: dict) -> dict:
  """{(bpp name, net): row} of Table 2; bpp names as in OPERATING_POINTS, or 'original'."""
  names = {float(name): name for name in operating_points.OPERATING_POINTS}
  table = {}
  for row in paper["table2"]["rows"]:
    bpp = row["bpp"] if row["bpp"] == "original" else names.get(float(row["bpp"]))
    table[(bpp, row["net"])] = row
  return table


def fig6_points(paper: dict, metric: str = "top5", operating_point: str = "0.0983"):
  """Table 2 accuracy at an operating point beside Table 1's counts: the paper's Fig. 6."""
  flops_1e9 = paper["flops_1e9_at_224"]
  points = []
  for row in paper["table2"]["rows"]:
    if row["bpp"] == "original" or abs(float(row["bpp"]) - float(operating_point)) > 1e-9:
      continue
    net = row["net"]
    decoded = not net.startswith("cresnet")
    points.append({"operating_point": operating_point, "net": net,
                   "input": "decoded" if decoded else "latent", "accuracy": row[metric],
                   "net_multiply_adds": flops_1e9[net] * 1e9,
                   "decoder_multiply_adds": flops_1e9["decoder"] * 1e9 if decoded else 0.0})
  return points
