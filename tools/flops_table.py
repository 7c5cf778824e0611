r"""Multiply-adds of the paper's nets and codec, measured from the built Keras models.

The analog of the cost columns of the paper's Table 1 (and Section 3.1 for the codec): ResNet-50
and ResNet-71 on 224x224 RGB images, cResNet-39/51/72 on the 28x28xC latent of such an image,
the codec's encoder at 224x224 and its decoder at 28x28xC. Each measured count is printed beside
the published one from shared/reference/paper_numbers.json. The logic lives in
tfcdi/nets/flops.py.

  python -m tools.flops_table            # a readable table
  python -m tools.flops_table --json     # the same rows as JSON on stdout
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
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
