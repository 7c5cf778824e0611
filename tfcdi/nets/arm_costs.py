"""Multiply-adds of the nets that reached each classification arm's accuracy (Fig. 6's x axis).

Table 1 counts the paper's full-width nets. An arm of a scaled run was trained at its own width
and class count, and a decoded arm's images came from a particular codec's decoder; Fig. 6 puts
each accuracy at the cost of the models that produced it. This counts them from the built Keras
graphs and returns JSON (the pipeline writes it to flops/arms.json), which the reporting layer
reads without building anything.
"""

from __future__ import annotations

import glob
import os
from typing import Sequence

from tfcdi.codec import operating_points
from tfcdi.nets import flops
from tfcdi.nets import resnet
from tfcdi.nets import specs

# The paper's decoder (Section 3.1), used where a decoded arm's codec cannot be identified.
PAPER_DECODER_FILTERS = operating_points.PAPER_FILTERS
PAPER_IMAGE_SIZE = 224


def _decoder_filters(operating_point: str, codec_name: str | None, bundles: dict):
  """Filters of the decoder that made a decoded arm's images: a bundle named as the run's codec
  (the workdir's, then the shipped one of the point), else None."""
  if codec_name in bundles:
    return bundles[codec_name]
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  try:
    meta = pretrained.read_metadata(pretrained.shipped_path(operating_point))
  except (pretrained.CodecError, ValueError):
    return None
  if codec_name is not None and meta.get("name") != codec_name:
    return None
  return tuple(meta["filters"])


def count_arm_costs(results: Sequence[dict], codec_bundles: Sequence[str] = (),
                    image_size: int = PAPER_IMAGE_SIZE,
                    default_decoder_filters=PAPER_DECODER_FILTERS) -> dict:
  """{"image_size", "arms": [...], "notes": [...]} for tfcdi-train-classifier results.

  One entry per arm (operating point, net, input; the first result of an arm counts, as all its
  seeds share the architecture): net_multiply_adds of the net at the run's width and class
  count, decoder_multiply_adds (0 unless decoded) and decoder_filters of its codec's decoder.
  Costs are counted at image_size RGB, the latent an eighth of it.
  """
  from tfcdi.codec import model as codec_model  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  bundles = {}
  for bundle in codec_bundles:
    meta = pretrained.read_metadata(bundle)
    if "filters" in meta:
      bundles[meta.get("name")] = tuple(meta["filters"])
  counts, arms, notes = {}, {}, []

  def count(key, build, shape):
    if key not in counts:
      counts[key] = flops.count_multiply_adds(build(), shape)
    return counts[key]

  side = image_size // 8
  for result in results:
    op_name = result.get("operating_point") or "original"
    key = (op_name, result["net"], result["input"])
    if key in arms:
      continue
    net = result["net"]
    width = float(result["config"]["width_multiplier"])
    num_classes = int(result.get("num_classes", 1000))
    if specs.get_spec(net).include_root:
      channels, shape = 3, (image_size, image_size, 3)
    else:
      channels = operating_points.get_operating_point(op_name).channels
      shape = (side, side, channels)
    net_count = count(
        (net, channels, width, num_classes),
        lambda: resnet.build_resnet(net, input_shape=(None, None, channels),
                                    num_classes=num_classes, width_multiplier=width,
                                    kernel_initializer="zeros"), shape)
    decoder_count, filters = 0, None
    codec_name = (result.get("codec") or {}).get("name")
    if result["input"] == "decoded":
      latent_channels = operating_points.get_operating_point(op_name).channels
      filters = _decoder_filters(op_name, codec_name, bundles)
      if filters is None:
        filters = tuple(default_decoder_filters)
        notes.append(f"{op_name} {net} decoded: codec {codec_name!r} is not a known bundle; "
                     f"decoder counted at filters {filters}")
      decoder_count = count(
          ("decoder", latent_channels, filters),
          lambda: codec_model.build_decoder(latent_channels, filters),
          (side, side, latent_channels))
    arms[key] = {"operating_point": op_name, "net": net, "input": result["input"],
                 "width_multiplier": width, "num_classes": num_classes, "codec": codec_name,
                 "net_multiply_adds": net_count, "decoder_multiply_adds": decoder_count,
                 "decoder_filters": None if filters is None else list(filters)}
  return {"image_size": image_size, "arms": list(arms.values()), "notes": notes,
          "counted_from": "the built Keras graphs (tfcdi.nets.flops)"}


def codec_bundles_in(workdir: str) -> list[str]:
  """The codec bundles a tfcdi-reproduce workdir made or copied (codecs/<op>/codec_<op>.npz)."""
  return sorted(glob.glob(os.path.join(workdir, "codecs", "*", "codec_*.npz")))
