"""The codec's operating points: one source of truth for C, L, beta, Ht and the learning rate.

The paper (Appendix A.1) trains three points, named by the bpp they reach on the validation set:
0.0983 bpp (C=8), 0.330 bpp (C=16) and 0.635 bpp (C=32). With a w/8 x h/8 x C representation
coded at H bits per symbol, bpp = C * H / 64, so the target entropy is Ht = 64 * bpp / C.

beta is not given for codec training in the paper; Section 6 gives it for joint training
(150 at 0.635 bpp, 600 at 0.0983 bpp), and we use those values here too (0.330 takes 150, like its
neighbour at the high-rate end). See BUILD_NOTES.md.
"""

from __future__ import annotations

import dataclasses

# Centers of the scalar quantizer (L). The paper states no L (Appendix A.1 gives C, the
# learning rates and the data; Fig. 9 shows channels using as few as 2 centers); 6 is this
# project's choice, listed in BUILD_NOTES.md's deviations from the text.
DEFAULT_NUM_CENTERS = 6
# The widths of the autoencoder's first two convolutions (and the decoder's last two), the same
# at every operating point (Appendix A.1, after Theis et al.); presets scale them. Stated here
# once: the codec model, its bundles, the training presets and the cost tables read this.
PAPER_FILTERS = (64, 128)
# Image side / latent side: a H x W image gives a H/8 x W/8 x C representation.
DOWNSAMPLING = 8


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
  """A rate-distortion operating point of the autoencoder codec."""

  name: str  # the bpp as the paper writes it, e.g. "0.635"; what --operating_point takes
  bpp: float  # the published target rate
  channels: int  # C, channels of the w/8 x h/8 x C representation
  beta: float  # weight of the rate term in Eq. 1
  learning_rate: float  # Adam learning rate of the paper's preset (Appendix A.1)
  num_centers: int = DEFAULT_NUM_CENTERS  # L
  # sigma of the soft assignment softmax(-sigma * d^2) whose gradient the quantizer uses.
  sigma: float = 1.0

  @property
  def target_entropy(self) -> float:
    """Ht in bits per symbol: the entropy at which C * Ht / 64 equals the target bpp."""
    return 64.0 * self.bpp / self.channels


OPERATING_POINTS = {
    op.name: op
    for op in (
        OperatingPoint(name="0.0983", bpp=0.0983, channels=8, beta=600.0, learning_rate=1e-3),
        OperatingPoint(name="0.330", bpp=0.330, channels=16, beta=150.0, learning_rate=1e-5),
        OperatingPoint(name="0.635", bpp=0.635, channels=32, beta=150.0, learning_rate=1e-3),
    )
}


def get_operating_point(name: str | float) -> OperatingPoint:
  """Looks an operating point up by its name ("0.635") or its bpp (0.635, "0.33")."""
  key = str(name).strip()
  if key in OPERATING_POINTS:
    return OPERATING_POINTS[key]
  try:
    value = float(key)
  except ValueError:
    value = None
  if value is not None:
    for op in OPERATING_POINTS.values():
      if abs(op.bpp - value) < 1e-9:
        return op
  choices = ", ".join(OPERATING_POINTS)
  raise ValueError(f"unknown operating point {name!r}; choose one of: {choices}")
