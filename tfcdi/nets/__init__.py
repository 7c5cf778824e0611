"""Classification and segmentation backbones, RGB and compressed-domain, and FLOP counting.

The nets of the paper are rows of `specs.NETS`; `build_resnet` builds any of them, and with
`input_branches="hyperprior"` the follow-up's two-branch cResNet (y_hat and sigma_hat inputs).
"""

from tfcdi.nets.flops import count_multiply_adds
from tfcdi.nets.flops import multiply_adds_by_layer
from tfcdi.nets.resnet import build_resnet
from tfcdi.nets.specs import Block
from tfcdi.nets.specs import Branch
from tfcdi.nets.specs import get_spec
from tfcdi.nets.specs import INPUT_BRANCHES
from tfcdi.nets.specs import net_names
from tfcdi.nets.specs import NETS
from tfcdi.nets.specs import NetSpec

__all__ = [
    "Block",
    "Branch",
    "INPUT_BRANCHES",
    "NETS",
    "NetSpec",
    "build_resnet",
    "count_multiply_adds",
    "get_spec",
    "multiply_adds_by_layer",
    "net_names",
]
