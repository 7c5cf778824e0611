"""What the command-line binaries share: one-line errors and how they pick a codec."""

import sys

from tfcdi.codec import operating_points
from tfcdi.codec import pretrained

# Binaries define --operating_point with default None (flags of one name must agree across the
# binaries a test process imports); None means this point.
DEFAULT_OPERATING_POINT = "0.635"


def error(message) -> None:
  """Prints `error: ...` on one line of stderr (the binary then exits with status 1)."""
  print("error: " + " ".join(str(message).split("\n")), file=sys.stderr, flush=True)


def load_codec(operating_point, codec_path) -> pretrained.Codec:
  """The shipped codec of an operating point, or the bundle at codec_path.

  With a bundle, an operating point given explicitly must agree with it; when none is given the
  bundle's own point is used.
  """
  if codec_path is None:
    op = operating_points.get_operating_point(operating_point or DEFAULT_OPERATING_POINT)
    return pretrained.load_codec(op.name)
  if operating_point is not None:
    operating_point = operating_points.get_operating_point(operating_point).name
  return pretrained.load_codec(operating_point, path=codec_path)
