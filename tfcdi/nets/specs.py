"""Architectures as data: every classification net of the paper is one row of `NETS`.

Torfason et al. (Table 3) compare RGB ResNets that read decoded images with cResNets that read
the compressed representation. Both are ResNet v1 bottleneck stacks and differ only in data:

- the RGB nets (resnet50, resnet71) start with the root block (7x7/2 conv with 64 filters, BN,
  ReLU, 3x3/2 max pool) and then run the stages conv2_x .. conv5_x;
- the cResNets (cresnet39, cresnet51, cresnet72) have no root block and no conv2_x. The latent of
  a 224x224 image is 28x28xC, the resolution conv3_x works at in an RGB ResNet, so the latent
  enters conv3_x directly and conv3_1 does not downsample.

A `Block` row follows tf-slim's `resnet_v1_block(scope, base_depth, num_units, stride)`, with one
deliberate difference: `stride` is the downsampling of the stage with respect to its input, the
paper's convention ("downsampling by conv3_1, conv4_1 and conv5_1"). Where inside the stage that
stride is applied (first 1x1 conv of the first unit as in He et al., or slim's 3x3 conv of the
previous stage's last unit) is a choice of the builder, see `unit_strides`.

Input branches (`Branch`, `INPUT_BRANCHES`). The follow-up work on the scale-hyperprior codec
(Balle et al. 2018; shared/papers/004, Table 2) feeds a cResNet two tensors of the same shape,
the quantized latent y_hat and the predicted scales sigma_hat. Each goes through a stage of its
own (one bottleneck unit of base depth 32, i.e. 1x1,32 / 3x3,32 / 1x1,128: the stage conv2_x
would be in an RGB ResNet), the two 128-channel outputs are concatenated to the 256 channels
conv3_x reads in ResNet-50, and the net goes on from conv3_x exactly as the row it is built
from. So the two-branch cResNet-39 is not a row of its own: it is the cresnet39 row built with
`input_branches="hyperprior"` (see resnet.build_resnet).
"""

from __future__ import annotations

import dataclasses
import math

from tfcdi.codec import operating_points

# Bottleneck units expand their base depth by this factor at their last 1x1 conv.
EXPANSION = 4

# Width of the root block's 7x7 conv (before any width multiplier).
ROOT_DEPTH = 64

# Downsampling of the root block: the 7x7/2 conv and the 3x3/2 max pool.
ROOT_STRIDE = 4

# Spatial downsampling of the codec: a H x W image gives a H/8 x W/8 x C latent.
LATENT_DOWNSAMPLING = operating_points.DOWNSAMPLING

STRIDE_PLACEMENTS = ("paper", "slim")


@dataclasses.dataclass(frozen=True)
class Block:
  """One stage of bottleneck units.

  Attributes:
    name: the paper's stage name, "conv2" .. "conv5"; unit i of it is named f"{name}_{i}".
    base_depth: width of the unit's 1x1 and 3x3 convs; the unit outputs EXPANSION * base_depth.
    num_units: number of bottleneck units in the stage.
    stride: downsampling of the stage with respect to its input.
  """

  name: str
  base_depth: int
  num_units: int
  stride: int

  @property
  def depth(self) -> int:
    """Channels the stage outputs."""
    return EXPANSION * self.base_depth


@dataclasses.dataclass(frozen=True)
class NetSpec:
  """A ResNet v1 bottleneck network as data.

  Attributes:
    name: the name the binaries take (--net=...).
    include_root: whether the net starts with the RGB root block (and so reads 3-channel images).
    blocks: the stages, in order.
  """

  name: str
  include_root: bool
  blocks: tuple[Block, ...]

  @property
  def reads_latent(self) -> bool:
    """True for the cResNets, which read the compressed representation instead of RGB."""
    return not self.include_root

  @property
  def num_units(self) -> int:
    return sum(block.num_units for block in self.blocks)

  @property
  def units_per_stage(self) -> dict[str, int]:
    """{"conv2": n, ...}; stages the net does not have are absent."""
    return {block.name: block.num_units for block in self.blocks}

  @property
  def nominal_stride(self) -> int:
    """Ratio of input to output resolution of the last stage, without dilation."""
    root = ROOT_STRIDE if self.include_root else 1
    return root * math.prod(block.stride for block in self.blocks)

  @property
  def latent_output_stride(self) -> int:
    """The output stride that keeps features at the latent's resolution (H/8 of the image).

    This is what the paper's dilated "-d" segmentation variants use: 8 for the RGB ResNets
    (relative to the image), 1 for the cResNets (relative to the latent they read).
    """
    return LATENT_DOWNSAMPLING if self.include_root else 1


@dataclasses.dataclass(frozen=True)
class Branch:
  """One input of a multi-input net and the stage of bottleneck units it goes through alone.

  Attributes:
    input_name: the name of the model input (and the key of that tensor in a feature dict);
      the branch's units are named f"{input_name}_{block.name}_{i}".
    block: the branch's stage; its stride is the downsampling of the branch.
  """

  input_name: str
  block: Block


# The follow-up's stem (shared/papers/004, Table 2: "conv1 None", then conv2_x as two columns
# of 1x1,32 / 3x3,32 / 1x1,128, one for y_hat and one for sigma_hat). Two 128-channel outputs
# concatenate to 256 channels, what conv3_1 of ResNet-50 reads, which is how the follow-up could
# start conv3_x onward from ImageNet weights.
INPUT_BRANCHES: dict[str, tuple[Branch, ...]] = {
    "hyperprior": (
        Branch("y_hat", Block("conv2", 32, 1, 1)),
        Branch("sigma_hat", Block("conv2", 32, 1, 1)),
    ),
}


def get_input_branches(branches: str | tuple[Branch, ...]) -> tuple[Branch, ...]:
  """The branches called `branches` in `INPUT_BRANCHES` (or `branches` itself, checked).

  Raises:
    ValueError: for an unknown name, no branches, a non-Branch entry or repeated input names.
  """
  if isinstance(branches, str):
    try:
      return INPUT_BRANCHES[branches]
    except KeyError:
      raise ValueError(f"Unknown input branches {branches!r}; expected one of "
                       f"{', '.join(INPUT_BRANCHES)} or a tuple of specs.Branch.") from None
  branches = tuple(branches)
  if not branches or not all(isinstance(b, Branch) for b in branches):
    raise ValueError(f"input_branches must be a name or a non-empty tuple of specs.Branch, got "
                     f"{branches!r}.")
  names = [b.input_name for b in branches]
  if len(set(names)) != len(names):
    raise ValueError(f"Input branches need distinct input names, got {names}.")
  return branches


def _rgb(name: str, conv2: int, conv3: int, conv4: int, conv5: int) -> NetSpec:
  # conv2_x works at the root block's output resolution (stride 1); each later stage halves it.
  return NetSpec(name, True, (
      Block("conv2", 64, conv2, 1),
      Block("conv3", 128, conv3, 2),
      Block("conv4", 256, conv4, 2),
      Block("conv5", 512, conv5, 2),
  ))


def _latent(name: str, conv3: int, conv4: int, conv5: int) -> NetSpec:
  # The latent is already at conv3_x resolution (image / 8), so conv3_1 keeps it.
  return NetSpec(name, False, (
      Block("conv3", 128, conv3, 1),
      Block("conv4", 256, conv4, 2),
      Block("conv5", 512, conv5, 2),
  ))


# The table. Units per stage are Table 3 of the paper (also in
# shared/reference/paper_numbers.json, "architectures"); tests check the two agree.
#                      conv2  conv3  conv4  conv5
NETS: dict[str, NetSpec] = {
    spec.name: spec for spec in (
        _rgb("resnet50",    3,     4,     6,     3),
        _rgb("resnet71",    3,     4,    13,     3),
        _latent("cresnet39",       4,     6,     3),
        _latent("cresnet51",       4,    10,     3),
        _latent("cresnet72",       4,    17,     3),
    )
}


def net_names() -> tuple[str, ...]:
  return tuple(NETS)


def get_spec(name: str) -> NetSpec:
  """The row of `NETS` called `name`; raises ValueError for an unknown name."""
  try:
    return NETS[name]
  except KeyError:
    raise ValueError(f"Unknown net {name!r}; expected one of {', '.join(NETS)}.") from None


def unit_strides(spec: NetSpec, stride_placement: str = "paper") -> list[list[int]]:
  """The stride of every unit, one list per block of `spec`.

  "paper": the stage's stride is on its first unit, as in He et al. (2016) and the paper's
  Table 3; this is what the published multiply-add counts assume.
  "slim": tf-slim's resnet_v1 puts the stride of a stage on the LAST unit of the stage before it
  (its resnet_v1_block(..., stride) means "downsample at the end of this block"). The overall
  stride is the same, but the output of every stage is computed at a different place, which is
  what a converted tf-slim checkpoint expects. A first block with a stride of its own has no
  earlier block to take it, so it keeps it on its first unit.

  Raises:
    ValueError: for an unknown `stride_placement`.
  """
  if stride_placement not in STRIDE_PLACEMENTS:
    raise ValueError(f"stride_placement must be one of {STRIDE_PLACEMENTS}, "
                     f"got {stride_placement!r}.")
  strides = [[1] * block.num_units for block in spec.blocks]
  for i, block in enumerate(spec.blocks):
    if block.stride == 1:
      continue
    if stride_placement == "paper" or i == 0:
      strides[i][0] = block.stride
    else:
      strides[i - 1][-1] = block.stride
  return strides
