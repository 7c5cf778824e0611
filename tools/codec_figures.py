r"""Figs. 9 and 10 for the shipped codecs (or any bundles) on one image.

  python -m tools.codec_figures --image=../shared/data/kodak/kodim23.png \
      --output_dir=reports/codec

Writes fig10_decoded.png (the original and its decoded image at each operating point, with the
rate of the real .tfci file and the PSNR) and fig9_channels.png (each decoded image and the four
highest-entropy channels of its representation). The logic lives in tfcdi/coded_images.py.
"""

import os

from absl import app
from absl import flags

from tfcdi import imageio
from tfcdi.codec import operating_points
from tfcdi.codec import pretrained

_IMAGE = flags.DEFINE_string("image", None, "The image to code (PNG, JPEG, ...).")
_CODECS = flags.DEFINE_multi_string(
    "codec_path", [], "Codec bundles (.npz), one row each; default: the three shipped codecs.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "reports/codec", "Where the PNGs go.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _IMAGE.value or not os.path.isfile(_IMAGE.value):
    raise app.UsageError(f"--image must be an image file, got {_IMAGE.value!r}")
  try:
    image, _ = imageio.load_rgb(_IMAGE.value)
    codecs = ([pretrained.load_codec(path=p) for p in _CODECS.value] if _CODECS.value else
              [pretrained.load_codec(op) for op in operating_points.OPERATING_POINTS])
  except (OSError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  from tfcdi import coded_images  # pylint: disable=g-import-not-at-top  (TensorFlow, matplotlib)
  try:
    for path in (coded_images.fig10_decoded_images(
                     image, codecs, os.path.join(_OUTPUT_DIR.value, "fig10_decoded.png")),
                 coded_images.fig9_latent_channels(
                     image, codecs, os.path.join(_OUTPUT_DIR.value, "fig9_channels.png"))):
      print(f"wrote {path}")
  except ValueError as e:  # a hyperprior bundle: Figs. 9 and 10 show the autoencoder's z_hat
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  app.run(main)
