"""Human-readable names of ImageNet classes, keyed by WordNet id (wnid).

Folders of an ImageNet-style ImageFolder are named by wnid ("n01440764"), and the latent store
and the exported classifiers keep those ids as their labels. People want names. This module
knows the ten Imagenette classes by heart; any other class can be named from a labels file the
caller points at (a TSV with `wnid` and `name` columns, like shared/data/imagenet_samples/
labels.tsv). Nothing is fetched from the network.
"""

from __future__ import annotations

import csv
import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class ImageNetClass:
  wnid: str
  index: int  # ILSVRC-2012 class index (0..999, sorted-wnid order); -1 if unknown
  name: str


# The ten Imagenette classes with their ILSVRC-2012 indices (see shared/data/README.md).
IMAGENETTE = {
    c.wnid: c for c in (
        ImageNetClass("n01440764", 0, "tench"),
        ImageNetClass("n02102040", 217, "English springer"),
        ImageNetClass("n02979186", 482, "cassette player"),
        ImageNetClass("n03000684", 491, "chain saw"),
        ImageNetClass("n03028079", 497, "church"),
        ImageNetClass("n03394916", 566, "French horn"),
        ImageNetClass("n03417042", 569, "garbage truck"),
        ImageNetClass("n03425413", 571, "gas pump"),
        ImageNetClass("n03445777", 574, "golf ball"),
        ImageNetClass("n03888257", 701, "parachute"),
    )
}


class LabelsFileError(ValueError):
  """A labels file is missing or does not have the columns this module reads."""


def read_labels_file(path: str) -> dict[str, ImageNetClass]:
  """Reads a tab-separated labels file with a header row naming `wnid` and `name` columns.

  A `class_index` column, if present, gives the ILSVRC index. Underscores in names are shown
  as spaces ("water_ouzel" -> "water ouzel"), the way the Imagenette names are written.

  Raises:
    LabelsFileError: the file cannot be read or lacks the `wnid` / `name` columns.
  """
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f, delimiter="\t"))
  except OSError as e:
    raise LabelsFileError(f"cannot read labels file {path}: {e.strerror or e}") from None
  if not rows or not {"wnid", "name"} <= set(rows[0]):
    raise LabelsFileError(f"{path} must be a TSV with a header naming 'wnid' and 'name' columns")
  classes = {}
  for row in rows:
    try:
      index = int(row.get("class_index") or -1)
    except ValueError:
      index = -1
    wnid = row["wnid"].strip()
    classes[wnid] = ImageNetClass(wnid, index, row["name"].strip().replace("_", " "))
  return classes


def class_names(wnids, labels_file: str | None = None) -> list[str]:
  """The name of every wnid in `wnids`; a wnid nobody knows is its own name.

  Args:
    wnids: class ids, e.g. a store's or a classifier's class list.
    labels_file: an optional TSV (see read_labels_file) whose names add to, and take
      precedence over, the built-in Imagenette ones.
  """
  known = dict(IMAGENETTE)
  if labels_file:
    known.update(read_labels_file(os.fspath(labels_file)))
  return [known[w].name if w in known else w for w in wnids]
