r"""Multiply-adds of the paper's nets and codec, measured from the built Keras models.

The analog of the cost columns of the paper's Table 1 (and Section 3.1 for the codec): ResNet-50
and ResNet-71 on 224x224 RGB images, cResNet-39/51/72 on the 28x28xC latent of such an image,
the codec's encoder at 224x224 and its decoder at 28x28xC. Each measured count is printed beside
the published one from shared/reference/paper_numbers.json. The logic lives in
tfcdi/nets/flops.py.

  python -m tools.flops_table            # a readable table
  python -m tools.flops_table --json     # the same rows as JSON on stdout
  python -m tools.flops_table --segmentation   # the DeepLab "-d" nets instead (Section 5):
      # each segmenter on a 320x320 crop (its 40x40xC latent), the decoder the RGB arms need,
      # and what each cResNet-d saves against each ResNet-d, beside the paper's 3.3e9 / 6.1e9
"""

import json
import os

from absl import app
from absl import flags

from tfcdi.nets import flops

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_JSON = flags.DEFINE_bool("json", False, "Print JSON instead of a table.")
_PAPER_NUMBERS = flags.DEFINE_string(
    "paper_numbers", os.path.join(_REPO_ROOT, "..", "shared", "reference", "paper_numbers.json"),
    "The reference numbers; published counts are read from its 'flops_1e9_at_224'.")
_LATENT_CHANNELS = flags.DEFINE_integer(
    "latent_channels", 32, "C of the 28x28xC latent the cResNets and the decoder read.")
_STRIDE_PLACEMENT = flags.DEFINE_enum(
    "stride_placement", "paper", ["paper", "slim"],
    "Where the ResNets downsample: 'paper' (He et al., what Table 1 counts) or 'slim'.")
_MODELS = flags.DEFINE_list("models", list(flops.PAPER_MODELS), "Models to count.")
_SEGMENTATION = flags.DEFINE_bool(
    "segmentation", False, "Count the segmentation nets (ResNet-d / cResNet-d + ASPP) instead.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 320,
                                   "--segmentation: side of the image (the paper's crop).")
_OPERATING_POINT = flags.DEFINE_string(
    "operating_point", "0.0983", "--segmentation: the codec point (its C) of the latent and "
    "of the decoder (the paper's Fig. 6 compares at 0.0983 bpp).")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 21,
                                    "--segmentation: logits of the head (PASCAL VOC's 21).")


def _format_table(rows):
  lines = [f"{'model':<10} {'input':<12} {'measured 1e9':>12} {'published 1e9':>13} "
           f"{'rel. diff':>9}  within 1%"]
  for row in rows:
    published = row["published_1e9"]
    difference = row["relative_difference"]
    lines.append(
        f"{row['model']:<10} {'x'.join(map(str, row['input_shape'])):<12} "
        f"{row['measured_1e9']:>12.4f} "
        f"{'-' if published is None else f'{published:.2f}':>13} "
        f"{'-' if difference is None else f'{difference:+.2%}':>9}  "
        f"{'-' if row['within_1pct'] is None else ('yes' if row['within_1pct'] else 'no')}")
  return "\n".join(lines)


def _segmentation(published_claims):
  # Imported here: only this mode builds the dilated nets and the codec's decoder.
  from tfcdi.codec import operating_points  # pylint: disable=g-import-not-at-top
  from tfcdi.nets import deeplab  # pylint: disable=g-import-not-at-top
  try:
    operating_points.get_operating_point(_OPERATING_POINT.value)
  except (KeyError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  if _IMAGE_SIZE.value <= 0 or _IMAGE_SIZE.value % deeplab.LOGIT_STRIDE:
    raise app.UsageError(f"--image_size must be a positive multiple of {deeplab.LOGIT_STRIDE}, "
                         f"got {_IMAGE_SIZE.value}")
  rows = deeplab.cost_comparison(
      deeplab.segmentation_costs(_IMAGE_SIZE.value, _NUM_CLASSES.value, _OPERATING_POINT.value),
      published_claims)
  if _JSON.value:
    print(json.dumps({"image_size": _IMAGE_SIZE.value, "operating_point": _OPERATING_POINT.value,
                      "num_classes": _NUM_CLASSES.value, "rows": rows,
                      "published_source": os.path.normpath(_PAPER_NUMBERS.value)}, indent=2))
    return
  print(f"Multiply-adds (x1e9) per {_IMAGE_SIZE.value}x{_IMAGE_SIZE.value} image, latent and "
        f"decoder at {_OPERATING_POINT.value} bpp, {_NUM_CLASSES.value} classes")
  print(f"{'net':<14} {'input':<12} {'segmenter':>9} {'ASPP head':>9} {'decoder':>8} "
        f"{'with decoder':>12}")
  for r in (r for r in rows if "net" in r):
    print(f"{r['net']:<14} {r['input']:<12} {r['segmenter_1e9']:>9.3f} {r['aspp_head_1e9']:>9.3f} "
          f"{r['decoder_1e9']:>8.3f} {r['with_decoder_1e9']:>12.3f}")
  print("\nSavings of the representation (x1e9); published: "
        f"{published_claims.get('segmentation_flops_saving_at_fixed_miou_1e9')} at fixed mIoU, "
        f"{published_claims.get('segmentation_flops_saving_incl_decoding_1e9')} counting the "
        "decoder (read off the paper's Fig. 6, not one pair of nets)")
  for r in (r for r in rows if "comparison" in r):
    print(f"  {r['comparison']}: {r['saving_1e9']:+.3f} ({r['saving_with_decoder_1e9']:+.3f} "
          "with the decoder)")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _SEGMENTATION.value:
    with open(_PAPER_NUMBERS.value) as f:
      _segmentation(json.load(f)["claims"])
    return
  unknown = sorted(set(_MODELS.value) - set(flops.PAPER_MODELS))
  if unknown:
    raise app.UsageError(f"Unknown --models {unknown}; choose from {flops.PAPER_MODELS}.")
  with open(_PAPER_NUMBERS.value) as f:
    published = json.load(f)["flops_1e9_at_224"]
  table = flops.flops_table(published, _LATENT_CHANNELS.value, _STRIDE_PLACEMENT.value,
                            _MODELS.value)
  rows = table["rows"]
  if _JSON.value:
    print(json.dumps({**table, "published_source": os.path.normpath(_PAPER_NUMBERS.value)},
                     indent=2))
  else:
    print(f"Multiply-adds per example; cResNets and decoder at C={_LATENT_CHANNELS.value}, "
          f"stride placement '{_STRIDE_PLACEMENT.value}'; published = "
          f"{os.path.normpath(_PAPER_NUMBERS.value)}")
    print(_format_table(rows))


def run():
  app.run(main)


if __name__ == "__main__":
  run()
