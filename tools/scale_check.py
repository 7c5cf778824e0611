r"""How well a shipped latent classifier reads images larger than its training view.

  python -m tools.scale_check --operating_point=0.635 --images=500 \
      --data_dir=../shared/data/imagenette2_224 --output=reports/classification/scale_check_0.635.json

The classifiers train on 28x28 crops of the 32x32 latent of a 256-px square view. A user's photo
comes at its own size (ImageNet's are about 500x375), and `tfcdi-classify` matches the scale in
the latent domain (serving.fit_latent: the symbols shrunk, nearest neighbour, to a shorter side
of 32, then the central 28x28). This measures top-1 / top-5 on Imagenette validation images of:
  view          the training view, compressed as serving.compress_for_classification does;
  <size>        the image resized to a photo's size (bicubic), compressed whole, classified as
                tfcdi-classify does (policy "resize");
  <size> crop   the same files with policy "crop": the central 28x28 of the full latent, no
                scale matching (what happens without it).
Imagenette's images are 224x224, so these "photos" are upsampled and softer than real photos of
that size: this checks the geometry of the scale matching, not a camera's detail. Square sizes
(448x448) differ from the view only in scale; 500x375 also changes the shape (the central square
of the latent is classified, as for a real 4:3 photo).
"""

import os
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from tfcdi import imageio
from tfcdi import metrics
from tfcdi import serving
from tfcdi.codec import coding
from tfcdi.codec import pretrained
from tfcdi.data import images as images_lib
from tools import _sizes

_OP = flags.DEFINE_string("operating_point", "0.635", "Operating point of the shipped codec.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "An image folder with val/<wnid>/ classes.")
_IMAGES = flags.DEFINE_integer("images", 500, "How many validation images (a seeded sample).")
_SIZES = flags.DEFINE_list("sizes", ["448x448", "500x375"], "Photo sizes, WIDTHxHEIGHT.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the JSON (optional).")


def _accuracy(probabilities: list, labels: list) -> dict:
  return {f"top{k}": metrics.top_k_accuracy(labels, np.stack(probabilities), k) for k in (1, 5)}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _DATA_DIR.value or not os.path.isdir(os.path.join(_DATA_DIR.value, "val")):
    raise app.UsageError("--data_dir must be an image folder with a val/ split")
  sizes = [_sizes.parse_size(s, 256, "is smaller than the 256-px training view")
           for s in _SIZES.value]
  codec = pretrained.load_codec(_OP.value)
  shipped = [d for d, info in serving.shipped_classifiers()
             if info["codec"]["fingerprint"] == codec.fingerprint.hex()]
  if not shipped:
    raise app.UsageError(f"no shipped classifier reads the latents of codec {codec.name}")
  export_dir = shipped[0]
  classifier = serving.load_classifier(export_dir)
  paths, classes, labels = images_lib.list_images(_DATA_DIR.value, "val")
  # The classifier's own class order: a label is an index into its wnids.
  index = {wnid: i for i, wnid in enumerate(classifier.wnids)}
  missing = sorted(set(classes) - set(index))
  if missing:
    raise app.UsageError(f"the classifier does not know the classes {', '.join(missing)}")
  order = np.random.default_rng(0).permutation(len(paths))[:_IMAGES.value]
  arms = ["view"] + [f"{w}x{h}{suffix}" for w, h in sizes for suffix in ("", " crop")]
  probabilities = {arm: [] for arm in arms}
  rates = {arm: [] for arm in arms}
  truth = []
  tick = time.time()
  for n, i in enumerate(order, 1):
    with Image.open(paths[i]) as im:
      rgb = im.convert("RGB")
    truth.append(index[classes[labels[i]]])
    data = serving.compress_for_classification(codec, np.asarray(rgb))
    probabilities["view"].append(_classify(classifier, data, "resize"))
    rates["view"].append(8 * len(data) / 256 ** 2)
    for width, height in sizes:
      photo = np.asarray(rgb.resize((width, height), Image.BICUBIC))
      data = coding.compress_image(codec, photo)
      for policy, suffix in (("resize", ""), ("crop", " crop")):
        probabilities[f"{width}x{height}{suffix}"].append(_classify(classifier, data, policy))
        rates[f"{width}x{height}{suffix}"].append(8 * len(data) / (width * height))
    if n % 100 == 0 or n == len(order):
      print(f"  {n}/{len(order)} images ({time.time() - tick:.0f} s)", flush=True)
  result = {
      "operating_point": _OP.value, "codec": codec.name, "fingerprint": codec.fingerprint.hex(),
      "classifier": os.path.basename(export_dir), "images": len(order),
      "data_dir": os.path.abspath(_DATA_DIR.value),
      "note": "Imagenette's 224-px validation images resized up to each size (bicubic): softer "
              "than real photos of that size",
      "arms": {arm: {**_accuracy(probabilities[arm], truth),
                     "mean_bpp": float(np.mean(rates[arm]))} for arm in arms},
      "command": ["python", "-m", "tools.scale_check"] + [
          f"--{name}={flags.FLAGS[name].value if name != 'sizes' else ','.join(_SIZES.value)}"
          for name in ("operating_point", "images", "sizes")] + [
              f"--data_dir={_DATA_DIR.value}"],
  }
  print(f"{'input':<16} {'top-1':>7} {'top-5':>7} {'bpp':>7}   ({result['classifier']}, "
        f"{len(order)} images)")
  for arm, r in result["arms"].items():
    print(f"{arm:<16} {100 * r['top1']:7.2f} {100 * r['top5']:7.2f} {r['mean_bpp']:7.4f}")
  if _OUTPUT.value:
    imageio.write_json(_OUTPUT.value, result)


def _classify(classifier, data: bytes, policy: str) -> np.ndarray:
  _, symbols = serving.read_for_classification(data, classifier, policy=policy)
  return classifier.probabilities(symbols[None])[0]


if __name__ == "__main__":
  app.run(main)
