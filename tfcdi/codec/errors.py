"""The error every reader and writer of .tfci bytes raises (bitstream.py, tables.py)."""


class BitstreamError(ValueError):
  """A .tfci file (or what should become one) is malformed, truncated or corrupted."""
