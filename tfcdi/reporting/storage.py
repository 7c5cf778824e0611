"""The storage claim's measurements: photos coded whole into real .tfci files
(tools/storage_check.py writes them) beside the latent store of the classification dataset.

The paper's 5.8x (ImageNet at 0.635 bpp: 144 GB -> 24.8 GB, about 19 KB per image) is a property
of full-size photos stored at their own size. A store of small re-saved JPEGs (Imagenette's
224-px files) starts from far fewer bytes per image, so its ratio cannot test that number; it is
shown as context, and the table says which measurement tests the claim.
"""

from __future__ import annotations

import os

from tfcdi.reporting import results as results_lib


def read_measurements(paths: list[str], start: str) -> list[dict]:
  """One record per storage_check results file: totals, codec and the file (relative to
  `start`)."""
  found = []
  for path in paths:
    result = results_lib.read_json(path)
    totals = (result or {}).get("totals") or {}
    if not totals.get("ratio"):
      continue
    found.append({"what": result.get("what"), "images_dir": result.get("images_dir"),
                  "operating_point": result.get("operating_point"),
                  "codec": (result.get("codec") or {}).get("name"),
                  "codec_fingerprint": (result.get("codec") or {}).get("fingerprint"),
                  "images": totals["images"], "source_bytes": totals["source_bytes"],
                  "tfci_bytes": totals["tfci_bytes"], "ratio": totals["ratio"],
                  "mean_tfci_bytes": totals["mean_tfci_bytes"], "bpp": totals["bpp"],
                  "source_bpp": totals.get("source_bpp"), "command": result.get("command"),
                  "source": os.path.relpath(path, start)})
  return found


def storage_markdown(measurements: list[dict], stores: list[dict],
                     published: dict | None) -> str:
  """Both measurements of the ratio in one table, the one that tests the paper's number named."""
  rows = []
  for m in measurements:
    rows.append([f"{m['images']} full-size photos ({m['images_dir']}), each coded whole",
                 m["operating_point"], results_lib.size_text(m["source_bytes"]),
                 results_lib.size_text(m["tfci_bytes"]), f"{m['ratio']:.2f}x",
                 results_lib.size_text(m["mean_tfci_bytes"]), f"{m['bpp']:.3f}", "yes"])
  for s in stores:
    totals = s.get("totals") or {}
    if s["operating_point"] != "0.635" or not totals.get("ratio"):
      continue
    count = totals.get("count") or sum(e.get("count") or 0 for e in s["splits"].values())
    store_bytes = totals.get("store_bytes")
    rows.append([f"latent store of the classification dataset: {count} images, "
                 f"{s['image_size']}-px views, {s['codec']}", s["operating_point"],
                 results_lib.size_text(totals.get("source_bytes")),
                 results_lib.size_text(store_bytes), f"{totals['ratio']:.2f}x",
                 results_lib.size_text(store_bytes / count if store_bytes and count else None),
                 None if totals.get("bpp") is None else f"{totals['bpp']:.3f}",
                 "no: small re-saved JPEGs, already at a low rate"])
  lines = ["# Storage at 0.635 bpp (Section 4.2)", "",
           "Sum of the real .tfci files' bytes against the sum of their source JPEGs' bytes.",
           "", results_lib.table(["measured on", "bpp", "JPEGs", ".tfci", "ratio",
                                  ".tfci per image", ".tfci bpp", "tests the paper's 5.8x"],
                                 rows), ""]
  if published:
    lines += [f"Published (ImageNet, 1.28 million full-size photos at 0.635 bpp): "
              f"{published['original']} GB -> {published['at_0.635_bpp']} GB, "
              f"{published['ratio']}x.", ""]
  return "\n".join(lines)
