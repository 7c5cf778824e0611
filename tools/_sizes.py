"""--sizes entries (WIDTHxHEIGHT) of the tools that measure coding at photo sizes."""

from absl import app


def parse_size(text: str, min_side: int = 1, why: str = "has no pixels") -> tuple:
  """'4000x3000' -> (4000, 3000); a bad entry is a usage error naming it."""
  try:
    width, height = (int(v) for v in text.lower().split("x"))
  except ValueError:
    raise app.UsageError(f"--sizes takes WIDTHxHEIGHT entries, got {text!r}") from None
  if min(width, height) < min_side:
    raise app.UsageError(f"--sizes: {text} {why}")
  return width, height
