r"""The storage claim measured on full-size photos: each JPEG -> a real .tfci file at its own size.

  python -m tools.storage_check --images=../shared/data/imagenet_samples \
      --operating_point=0.635 --output=reports/storage/imagenet_samples_0.635.json

The paper's 5.8x (ImageNet: 144 GB of JPEGs -> 24.8 GB at 0.635 bpp) is a property of full-size
photos stored whole. The latent store of the cpu preset holds Imagenette's re-saved 224-px JPEGs,
already at a low rate, so its ratio cannot test that number. This tool compresses every image of
a folder of full-size ImageNet photos with the shipped codec, at the image's own size (no resize,
no crop: as the paper's store keeps them), and writes what it measured: per image the source
JPEG's bytes, the .tfci file's bytes and its bits per pixel; in total the ratio of the sums. The
.tfci files go to --tfci_dir (a temporary folder by default); the report reads only the JSON.
"""

import glob
import os
import sys
import tempfile
import time

from absl import app
from absl import flags

from tfcdi import imageio
from tfcdi.codec import coding
from tfcdi.codec import pretrained

_IMAGES = flags.DEFINE_string("images", None, "A folder of full-size JPEG photos.")
_OP = flags.DEFINE_string("operating_point", "0.635", "Operating point of the shipped codec.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the results JSON.")
_TFCI_DIR = flags.DEFINE_string("tfci_dir", None,
                                "Where to keep the .tfci files (default: a temporary folder).")

_JPEG_EXTENSIONS = (".jpg", ".jpeg")


def measure(image_paths, codec, tfci_dir: str, log=print) -> dict:
  """Compresses each image whole into tfci_dir; the per-image sizes and their totals."""
  images = []
  for path in image_paths:
    image, notes = imageio.load_rgb(path)
    tick = time.time()
    data = coding.compress_image(codec, image)
    target = os.path.join(tfci_dir, os.path.splitext(os.path.basename(path))[0] + ".tfci")
    imageio.write_atomic(target, data)
    height, width = image.shape[:2]
    # The file on disk is what a store holds: its size, not len(data), is the measurement.
    entry = {"file": os.path.basename(path), "width": width, "height": height,
             "source_bytes": os.path.getsize(path), "tfci_bytes": os.path.getsize(target),
             "notes": notes}
    entry["bpp"] = 8.0 * entry["tfci_bytes"] / (width * height)
    images.append(entry)
    log(f"{entry['file']}: {width}x{height}, {entry['source_bytes']} -> {entry['tfci_bytes']} "
        f"bytes, {entry['bpp']:.3f} bpp ({time.time() - tick:.1f} s)")
  source = sum(e["source_bytes"] for e in images)
  tfci = sum(e["tfci_bytes"] for e in images)
  pixels = sum(e["width"] * e["height"] for e in images)
  totals = {"images": len(images), "source_bytes": source, "tfci_bytes": tfci,
            "ratio": source / tfci if tfci else None,
            "mean_tfci_bytes": tfci / len(images) if images else None,
            "mean_source_bytes": source / len(images) if images else None,
            "bpp": 8.0 * tfci / pixels if pixels else None,
            "source_bpp": 8.0 * source / pixels if pixels else None}
  return {"images": images, "totals": totals}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _IMAGES.value or not os.path.isdir(_IMAGES.value):
    raise app.UsageError(f"--images must be a folder of JPEG photos, got {_IMAGES.value!r}")
  if not _OUTPUT.value:
    raise app.UsageError("--output is required")
  paths = sorted(p for p in glob.glob(os.path.join(_IMAGES.value, "*"))
                 if p.lower().endswith(_JPEG_EXTENSIONS))
  if not paths:
    raise app.UsageError(f"no JPEG files in {_IMAGES.value}")
  codec = pretrained.load_codec(_OP.value)
  with tempfile.TemporaryDirectory() as scratch:
    tfci_dir = _TFCI_DIR.value or scratch
    os.makedirs(tfci_dir, exist_ok=True)
    result = measure(paths, codec, tfci_dir)
  result.update({
      "what": "full-size photos, each compressed whole at its own size with the shipped codec",
      "images_dir": os.path.basename(os.path.normpath(_IMAGES.value)),
      "operating_point": codec.operating_point.name,
      "codec": {"name": codec.name, "fingerprint": codec.fingerprint.hex()},
      "command": " ".join(["python -m tools.storage_check"] + sys.argv[1:]),
  })
  imageio.write_json(_OUTPUT.value, result)
  t = result["totals"]
  print(f"{t['images']} images: {t['source_bytes']} -> {t['tfci_bytes']} bytes, "
        f"{t['ratio']:.2f}x, {t['mean_tfci_bytes'] / 1000:.1f} kB per image, {t['bpp']:.3f} bpp")


if __name__ == "__main__":
  app.run(main)
