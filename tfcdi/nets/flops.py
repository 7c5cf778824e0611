"""Multiply-adds of a built Keras model at a fixed input size, counted layer by layer.

The paper's "FLOPs" (Table 1, Section 3.1) are multiply-adds of the convolutional and fully
connected layers; batch norm, activations, pooling and additions are left out, and so they are
here. Per call of a layer, with its kernel shape and the input / output shapes it actually sees:

  Conv1D/2D/3D            output positions * prod(kernel)      (kernel = k.. x C_in/groups x C_out)
  Conv*Transpose          input positions * prod(kernel)       (kernel = k.. x C_out x C_in)
  DepthwiseConv1D/2D      output positions * prod(kernel)      (kernel = k.. x C_in x multiplier)
  SeparableConv1D/2D      output positions * (prod(depthwise) + prod(pointwise))
  Dense                   input rows * prod(kernel)            (kernel = C_in x C_out)

"Positions" are all entries of a tensor but its channels, for one example (batch size 1), so
counts hold for channels_first too. Dilation changes no count: a dilated 3x3 is still nine
multiply-adds per output and input channel. A transposed conv is counted over its input, where
each input pixel scatters one k x k x C_out patch (the cost of the conv whose gradient it is). So
the codec's decoder, which mirrors the encoder, counts exactly as many multiply-adds as it.

How shapes are found: Keras infers the output shape of the model for a batch-1 input of the
requested size (no computation), and every counted layer reports the static shapes of each of
its calls on the way. That works for functional models with unknown spatial sizes, for nested
models (an encoder model used inside another model) and for subclassed models that call
functional sub-models (the codec's Autoencoder), and it counts a shared layer once per call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Sequence

import keras

from tfcdi.nets import resnet as resnet_lib
from tfcdi.nets import specs as specs_lib

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_CONV_TRANSPOSE = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                   keras.layers.Conv3DTranspose)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_DENSE = (keras.layers.Dense,)
COUNTED_LAYER_TYPES = _CONV + _CONV_TRANSPOSE + _DEPTHWISE + _SEPARABLE + _DENSE


@dataclasses.dataclass(frozen=True)
class LayerCall:
  """One call of a counted layer during the trace."""

  name: str  # path of the layer inside the model, e.g. "encoder/down1"
  class_name: str
  input_shape: tuple[int, ...]
  output_shape: tuple[int, ...]
  multiply_adds: int


def _channels_axis(layer) -> int:
  return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _positions(shape: Sequence[int], channels_axis: int) -> int:
  """Entries of a batch-1 tensor of `shape` per channel."""
  return math.prod(shape) // shape[channels_axis]


def _multiply_adds(layer, input_shape, output_shape) -> int:
  axis = _channels_axis(layer)
  if isinstance(layer, _SEPARABLE):
    kernels = math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
    return _positions(output_shape, axis) * kernels
  kernel = math.prod(layer.kernel.shape)
  if isinstance(layer, _CONV_TRANSPOSE):
    return _positions(input_shape, axis) * kernel
  if isinstance(layer, _DENSE):
    return _positions(input_shape, -1) * kernel
  return _positions(output_shape, axis) * kernel  # conv and depthwise conv


def _counted_layers(model) -> dict[int, tuple[str, keras.layers.Layer]]:
  """id -> (path, layer) for every counted layer in `model`, nested models included."""
  found = {}

  def visit(layer, prefix):
    # Keras has no public accessor for the sub-layers of an arbitrary layer (Model.layers only
    # covers models); _flatten_layers is what Keras itself uses to collect weights.
    # pylint: disable-next=protected-access
    for child in layer._flatten_layers(include_self=False, recursive=False):
      path = f"{prefix}{child.name}"
      if isinstance(child, COUNTED_LAYER_TYPES):
        found.setdefault(id(child), (path, child))
      else:
        visit(child, path + "/")

  if isinstance(model, COUNTED_LAYER_TYPES):
    found[id(model)] = (model.name, model)
  else:
    visit(model, "")
  return found


@contextlib.contextmanager
def _recording_calls(layers: dict[int, tuple[str, keras.layers.Layer]], calls: list[LayerCall]):
  """Temporarily routes each layer's shape inference and call through a recorder.

  A functional model infers its output shape by calling `compute_output_spec` of each layer in
  turn (cheap: no tensors, no graph); a subclassed model instead traces its `call` in a scratch
  graph, where each sub-layer's `call` runs on symbolic tensors. Keras looks both methods up on
  the instance every time, so instance attributes shadow the class methods for the duration of
  the trace, and deleting them restores the layers exactly. A layer whose shape inference runs its
  own `call` is recorded once, by the outer of the two.
  """
  patched = []

  def recorder(layer, path, method):
    active = []

    def recording(*args, **kwargs):
      if active:  # nested call of the same layer, e.g. compute_output_spec -> call
        return method(*args, **kwargs)
      active.append(True)
      try:
        outputs = method(*args, **kwargs)
      finally:
        active.pop()
      inputs = args[0] if args else kwargs["inputs"]
      in_shape, out_shape = tuple(inputs.shape), tuple(outputs.shape)
      if None in in_shape or None in out_shape:
        raise ValueError(f"Layer {path} has an unknown static shape {in_shape} -> {out_shape}; "
                         "the input shape must fix every dimension.")
      calls.append(LayerCall(path, type(layer).__name__, in_shape, out_shape,
                             _multiply_adds(layer, in_shape, out_shape)))
      return outputs

    return recording

  try:
    for path, layer in layers.values():
      for method_name in ("compute_output_spec", "call"):
        object.__setattr__(layer, method_name,
                           recorder(layer, path, getattr(layer, method_name)))
      patched.append(layer)
    yield
  finally:
    for layer in patched:
      for method_name in ("compute_output_spec", "call"):
        object.__delattr__(layer, method_name)


def _symbolic_inputs(model, input_shape) -> list[keras.KerasTensor]:
  model_inputs = getattr(model, "inputs", None) or []
  if isinstance(input_shape, dict):
    # One shape per named input (e.g. the two-branch cResNet's y_hat and sigma_hat).
    names = [t.name for t in model_inputs]
    if sorted(input_shape) != sorted(names):
      raise ValueError(f"input_shape names the inputs {sorted(input_shape)}, but {model.name!r} "
                       f"has the inputs {names}.")
    input_shape = [input_shape[name] for name in names]
  shapes = input_shape
  if not shapes or isinstance(shapes[0], (int, type(None))):
    shapes = [shapes]
  if len(model_inputs) > 1 and len(shapes) != len(model_inputs):
    raise ValueError(
        f"{model.name!r} has {len(model_inputs)} inputs "
        f"({', '.join(t.name for t in model_inputs)}); give one shape per input, as a list in "
        f"that order or a dict by input name, got {input_shape!r}.")
  dtypes = [getattr(t, "dtype", None) for t in model_inputs]
  if len(dtypes) != len(shapes):
    dtypes = ["float32"] * len(shapes)
  tensors = []
  for shape, dtype in zip(shapes, dtypes):
    shape = tuple(shape)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
      raise ValueError(f"input_shape must be a fully known shape without the batch dimension, "
                       f"e.g. (224, 224, 3); got {input_shape!r}.")
    tensors.append(keras.KerasTensor((1,) + shape, dtype=dtype or "float32"))
  return tensors


def trace_layer_calls(model: keras.Model, input_shape) -> list[LayerCall]:
  """Every call of a counted layer when `model` runs on one example of `input_shape`.

  Args:
    model: a built keras.Model (functional, sequential or subclassed) or layer.
    input_shape: the shape of one example without the batch dimension, e.g. (224, 224, 3); for
      a model with several inputs, a list of such shapes in input order or a dict of them keyed
      by input name (e.g. {"y_hat": (28, 28, 192), "sigma_hat": (28, 28, 192)}).

  Returns:
    LayerCall records in call order.

  Raises:
    ValueError: if the model is not built or the shape is not fully known.
  """
  if not model.built:
    raise ValueError(f"Model {model.name!r} is not built; build it (or call it once) first.")
  inputs = _symbolic_inputs(model, input_shape)
  calls: list[LayerCall] = []
  with _recording_calls(_counted_layers(model), calls):
    # Shape inference only: nothing is computed, and unlike calling the model on a keras.Input
    # it adds no node to the model's graph.
    model.compute_output_spec(inputs[0] if len(inputs) == 1 else inputs)
  return calls


def count_multiply_adds(model: keras.Model, input_shape) -> int:
  """Multiply-adds of conv and dense layers for one example of `input_shape` (see module doc)."""
  return sum(call.multiply_adds for call in trace_layer_calls(model, input_shape))


def multiply_adds_by_layer(model: keras.Model, input_shape) -> dict[str, int]:
  """{layer path: multiply-adds} in call order, summing the calls of a shared layer."""
  totals: dict[str, int] = {}
  for call in trace_layer_calls(model, input_shape):
    totals[call.name] = totals.get(call.name, 0) + call.multiply_adds
  return totals


# --- The paper's cost table (Table 1, Section 3.1) -------------------------------------------

# Image side the paper counts at; the cResNets get the latent of such an image.
PAPER_IMAGE_SIZE = 224
# The models of the table, in the order the paper gives them.
PAPER_MODELS = ("resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72", "encoder",
                "decoder")


def paper_model_input_shape(name: str, latent_channels: int = 32) -> tuple[int, int, int]:
  """The input the paper counts `name` at: a 224x224 image or its 28x28xC latent."""
  if name in ("encoder",) or (name in specs_lib.NETS and specs_lib.NETS[name].include_root):
    return (PAPER_IMAGE_SIZE, PAPER_IMAGE_SIZE, 3)
  if name == "decoder" or name in specs_lib.NETS:
    side = PAPER_IMAGE_SIZE // specs_lib.LATENT_DOWNSAMPLING
    return (side, side, latent_channels)
  raise ValueError(f"Unknown model {name!r}; expected one of {PAPER_MODELS}.")


def _build_for_counting(name: str, latent_channels: int, stride_placement: str) -> keras.Model:
  """A full-size model of the paper's cost table: one of the five nets, or the codec's halves."""
  if name in ("encoder", "decoder"):
    # Imported here so that the nets do not depend on the codec package otherwise.
    from tfcdi.codec import model as codec_model  # pylint: disable=g-import-not-at-top
    build = codec_model.build_encoder if name == "encoder" else codec_model.build_decoder
    return build(latent_channels)
  shape = paper_model_input_shape(name, latent_channels)
  # Zero kernels build faster than random ones, and the weights' values change no count.
  return resnet_lib.build_resnet(name, input_shape=(None, None, shape[-1]),
                                 stride_placement=stride_placement, kernel_initializer="zeros")


def measure_paper_models(latent_channels: int = 32, stride_placement: str = "paper",
                         names: Sequence[str] = PAPER_MODELS) -> dict[str, int]:
  """{model: multiply-adds} at the paper's input sizes (builds each full-size model once)."""
  measured = {}
  for name in names:
    model = _build_for_counting(name, latent_channels, stride_placement)
    measured[name] = count_multiply_adds(model, paper_model_input_shape(name, latent_channels))
  return measured


def compare_with_published(measured: dict[str, int], published_1e9: dict[str, float],
                           latent_channels: int = 32, tolerance: float = 0.01) -> list[dict]:
  """Rows of measured vs published multiply-adds (published in units of 1e9, as in the paper).

  Each row: model, input_shape, measured_multiply_adds, measured_1e9, published_1e9,
  relative_difference ((measured - published) / published) and within_1pct (|difference| <=
  tolerance). Models without a published number get None for the last three.
  """
  rows = []
  for name, count in measured.items():
    published = published_1e9.get(name)
    row = {
        "model": name,
        "input_shape": list(paper_model_input_shape(name, latent_channels)),
        "measured_multiply_adds": int(count),
        "measured_1e9": count / 1e9,
        "published_1e9": published,
        "relative_difference": None,
        "within_1pct": None,
    }
    if published:
      difference = (count / 1e9 - published) / published
      row["relative_difference"] = difference
      row["within_1pct"] = bool(abs(difference) <= tolerance)
    rows.append(row)
  return rows


def flops_table(published_1e9: dict[str, float], latent_channels: int = 32,
                stride_placement: str = "paper", names: Sequence[str] = PAPER_MODELS) -> dict:
  """Table 1 as a JSON-ready dict: every model measured and set beside its published count."""
  published = {k: v for k, v in published_1e9.items() if not k.startswith("_")}
  measured = measure_paper_models(latent_channels, stride_placement, names)
  return {
      "unit": "multiply-adds per example (conv and dense layers)",
      "latent_channels": latent_channels,
      "stride_placement": stride_placement,
      "rows": compare_with_published(measured, published, latent_channels),
  }
