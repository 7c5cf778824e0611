"""The hyperprior codec's qualities: one source of truth for lambda and the channel counts.

Balle et al. 2018 ("bmshj2018") trade rate for distortion with one Lagrange multiplier per
model. The common numbering of its eight models (quality 1 = lowest rate, 8 = highest) and their
multipliers are those of the widely used re-trainings of the paper's models; the follow-up work
(shared/papers/004) classifies from qualities 1, 4 and 8. Balle et al. use N = 128 filters and
M = 192 latent channels at low rates and N = 192, M = 320 at high rates, because the latent
must carry more information there.

Each quality has one lambda per distortion, both from CompressAI's model-zoo documentation
(https://interdigitalinc.github.io/CompressAI/zoo.html, "Training": the loss functions and the
lambda of each quality; the MS-SSIM row is what its bmshj2018-hyperprior MS-SSIM models, the
follow-up's "HyperMS-SSIM-1 / -4 / -8", were trained with):
  mse      lambda * 255^2 * MSE + bpp with the MSE over pixels in [0, 1], i.e. lambda * MSE_255
           + bpp with the MSE on the 0-255 scale our models use (tfcdi/codec/hyperprior.py);
  ms-ssim  lambda * (1 - MS-SSIM) + bpp (MS-SSIM is scale-free: the same on [0, 1] and [0, 255]).

The "cpu" widths are what a 2-core CPU trains in reasonable time (BUILD_NOTES.md); they keep
the ratio between the low- and high-rate models. "tiny" is for tests.
"""

from __future__ import annotations

import dataclasses

# The distortions a hyperprior quality can be trained for (what --distortion takes).
MSE = "mse"
MS_SSIM = "ms-ssim"
DISTORTIONS = (MSE, MS_SSIM)


@dataclasses.dataclass(frozen=True)
class Quality:
  """One rate-distortion trade-off of the hyperprior codec."""

  quality: int  # 1 (lowest rate) .. 8 (highest); what --quality takes
  lmbda: float  # lambda of lambda * 255^2 * MSE[0, 1] + bpp
  ms_ssim_lmbda: float  # lambda of lambda * (1 - MS-SSIM) + bpp
  num_filters: int  # N: filters of the transforms, channels of the hyper-latent z
  latent_channels: int  # M: channels of the latent y
  cpu_num_filters: int  # N at the cpu preset
  cpu_latent_channels: int  # M at the cpu preset

  @property
  def name(self) -> str:
    return f"q{self.quality}"

  def lambda_for(self, distortion: str) -> float:
    """The Lagrange multiplier of this quality trained for `distortion` (mse or ms-ssim)."""
    return {MSE: self.lmbda, MS_SSIM: self.ms_ssim_lmbda}[check_distortion(distortion)]


_LOW = dict(num_filters=128, latent_channels=192, cpu_num_filters=64, cpu_latent_channels=96)
_HIGH = dict(num_filters=192, latent_channels=320, cpu_num_filters=96, cpu_latent_channels=160)

QUALITIES = {
    q.quality: q
    for q in (
        Quality(1, 0.0018, 2.40, **_LOW),
        Quality(2, 0.0035, 4.58, **_LOW),
        Quality(3, 0.0067, 8.73, **_LOW),
        Quality(4, 0.0130, 16.64, **_LOW),
        Quality(5, 0.0250, 31.73, **_LOW),
        Quality(6, 0.0483, 60.50, **_HIGH),
        Quality(7, 0.0932, 115.37, **_HIGH),
        Quality(8, 0.1800, 220.00, **_HIGH),
    )
}

# The three qualities the follow-up work (and tfcdi's reproduction) trains.
TRAINED_QUALITIES = (1, 4, 8)
DEFAULT_QUALITY = 4
# Widths of the "tiny" preset, for tests and smoke runs: (N, M).
TINY_CHANNELS = (8, 8)


def check_distortion(distortion: str) -> str:
  """`distortion` if it is one of DISTORTIONS; ValueError naming the choices otherwise."""
  if distortion not in DISTORTIONS:
    raise ValueError(f"unknown distortion {distortion!r}; choose one of {', '.join(DISTORTIONS)}")
  return distortion


def distortion_tag(distortion: str) -> str:
  """What names say for a distortion: "" for mse (the names of the first, MSE-trained codecs
  stay as they were), "msssim" for ms-ssim (hp-q4-msssim-cpu, hyperprior_q4_msssim.npz)."""
  return "" if check_distortion(distortion) == MSE else "msssim"


def get_quality(quality: int | str) -> Quality:
  """Looks a quality up by its number (4, "4" or "q4")."""
  key = str(quality).strip().lower().removeprefix("q")
  try:
    number = int(key)
  except ValueError:
    number = None
  if number not in QUALITIES:
    choices = ", ".join(str(q) for q in QUALITIES)
    raise ValueError(f"unknown hyperprior quality {quality!r}; choose one of: {choices}")
  return QUALITIES[number]


def channels(quality: int | str, preset: str = "paper") -> tuple:
  """(N, M) of a quality at a preset: paper (Balle et al.), cpu or tiny."""
  q = get_quality(quality)
  if preset == "paper":
    return q.num_filters, q.latent_channels
  if preset == "cpu":
    return q.cpu_num_filters, q.cpu_latent_channels
  if preset == "tiny":
    return TINY_CHANNELS
  raise ValueError(f"unknown preset {preset!r}; choose one of paper, cpu, tiny")
