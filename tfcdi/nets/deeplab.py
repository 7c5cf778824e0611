"""DeepLab-v2 segmenters on the paper's backbones: ResNet-50-d (RGB) and cResNet-39/51-d (latent).

Section 5.1 of Torfason et al. turns the classifiers into segmenters the DeepLab-v2 way (Chen et
al. 2016): the backbone stops subsampling and dilates its later stages instead, and the
classification layer is replaced by atrous spatial pyramid pooling (ASPP), four parallel 3x3
convolutions with dilation rates 6, 12, 18 and 24, each producing per-class logits, summed.

- RGB nets run at output stride 8 (conv4_x dilation 2, conv5_x dilation 4), so a 320x320 crop
  gives 40x40 logits.
- cResNets keep the latent's own resolution (conv4_x dilation 2, conv5_x dilation 4 too), so the
  40x40xC latent of the same 320x320 crop also gives 40x40 logits. Both arms therefore predict
  on the same grid: one logit vector per 8x8 block of pixels.

The backbone is `build_resnet(..., include_top=False, output_stride="latent")`, not a copy, and
the segmenter is one flat functional model whose backbone layers carry the classifier's layer
names; that is what lets `init_backbone_from_classifier` copy a trained classifier in by name.

Logits are upsampled to the label resolution outside the model (`upsample_logits`), for the
loss and for evaluation, because the label size of a full evaluation image is not a multiple of
the output stride in general.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import keras
import tensorflow as tf

from tfcdi import configs
from tfcdi.codec import operating_points
from tfcdi.nets import flops as flops_lib
from tfcdi.nets import resnet as resnet_lib
from tfcdi.nets import specs as specs_lib

# The ASPP dilation rates: the paper's ("ASPP-L") and DeepLab-v2's "ASPP-S" for small logit
# grids, stated with the presets that pick them (tfcdi/configs.py).
ASPP_RATES = configs.ASPP_RATES
ASPP_SMALL_RATES = configs.ASPP_SMALL_RATES

# Names of the ASPP branches are f"{HEAD_PREFIX}_rate{rate}"; every layer whose name starts with
# HEAD_PREFIX belongs to the head (the layers the paper trains at 10x the learning rate).
HEAD_PREFIX = "aspp"

# The nets the paper segments with (Table 2, Fig. 4 - 6): the -d variants of these rows.
SEGMENTATION_NETS = ("resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72")

# Logits cover the image in blocks of this many pixels per side, for both arms.
LOGIT_STRIDE = specs_lib.LATENT_DOWNSAMPLING


class SegmenterError(ValueError):
  """A segmenter was asked for something it cannot do (bad net, shapes, checkpoint)."""


def aspp_head(features, num_classes: int, rates: Sequence[int] = ASPP_RATES,
              weight_decay: float = 0.0, name: str = HEAD_PREFIX):
  """DeepLab-v2 ASPP: one 3x3 atrous conv to `num_classes` logits per rate, summed.

  Each branch has a bias (DeepLab-v2's fc8 layers do; there is no BN after them). The kernels
  start from N(0, 0.01), as in DeepLab-v2, so the summed logits start near zero and the loss
  near log(num_classes).

  Args:
    features: the backbone's feature map [B, h, w, F] (a Keras tensor).
    num_classes: number of logits per position.
    rates: dilation rates, one branch each.
    weight_decay: SGD-style L2 coefficient on the kernels (the gradient gains wd * w).
    name: prefix of the branch names.

  Returns:
    Logits [B, h, w, num_classes] at the feature map's resolution.
  """
  if num_classes < 1:
    raise SegmenterError(f"num_classes must be positive, got {num_classes}.")
  if not rates or any(int(r) < 1 for r in rates):
    raise SegmenterError(f"ASPP rates must be positive ints, got {rates!r}.")
  # Same convention as build_resnet: Keras' L2(l) has gradient 2 * l * w.
  regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
  branches = [
      keras.layers.Conv2D(
          num_classes, 3, dilation_rate=int(rate), padding="same", use_bias=True,
          kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
          kernel_regularizer=regularizer, name=f"{name}_rate{int(rate)}")(features)
      for rate in rates
  ]
  if len(branches) == 1:
    return branches[0]
  return keras.layers.Add(name=f"{name}_sum")(branches)


def build_segmenter(
    net_name: str,
    num_classes: int,
    input_shape: Sequence[int | None] | None = None,
    *,
    width_multiplier: float = 1.0,
    weight_decay: float = 5e-4,
    rates: Sequence[int] = ASPP_RATES,
    stride_placement: str = "paper",
    batch_norm_momentum: float = 0.99,
    kernel_initializer="he_normal",
    model_name: str | None = None,
) -> keras.Model:
  """A DeepLab-v2 "-d" segmenter: dilated ResNet / cResNet backbone + ASPP head.

  Args:
    net_name: a row of `specs.NETS`: "resnet50" / "resnet71" read RGB (mean-centred pixels),
      "cresnet39" / "cresnet51" / "cresnet72" read the latent z_hat.
    num_classes: number of classes (11 for CamVid, 21 for PASCAL VOC).
    input_shape: (height, width, channels); RGB nets default to (None, None, 3), cResNets need
      the latent's channel count, e.g. (None, None, 8) at the 0.0983 bpp operating point.
    width_multiplier: scales every backbone width (1.0 is the paper's net).
    weight_decay: SGD-style L2 coefficient on all kernels (the paper's 5e-4).
    rates: ASPP dilation rates.
    stride_placement: see `build_resnet`; "paper" is what the multiply-add counts assume.
    batch_norm_momentum: of the backbone's BN moving averages.
    kernel_initializer: of the backbone's kernels (the head always uses N(0, 0.01)).
    model_name: the keras.Model's name; defaults to e.g. "deeplab_cresnet51".

  Returns:
    A functional keras.Model from the input to logits [B, h, w, num_classes] with h = H / 8 for
    RGB nets (rounded up) and h = H for cResNets. Backbone layers have the classifier's names;
    head layers start with HEAD_PREFIX.
  """
  if net_name not in specs_lib.NETS:
    raise SegmenterError(f"Unknown net {net_name!r}; expected one of {', '.join(specs_lib.NETS)}.")
  try:
    backbone = resnet_lib.build_resnet(
        net_name, input_shape=input_shape, include_top=False, width_multiplier=width_multiplier,
        output_stride="latent", stride_placement=stride_placement, weight_decay=weight_decay,
        batch_norm_momentum=batch_norm_momentum, kernel_initializer=kernel_initializer)
  except ValueError as e:
    raise SegmenterError(str(e)) from None
  # Reusing the backbone's graph (not nesting it as one layer) gives a flat model whose layer
  # names are exactly the classifier's: weights can then be copied by name.
  logits = aspp_head(backbone.output, num_classes, rates, weight_decay)
  return keras.Model(backbone.input, logits, name=model_name or f"deeplab_{net_name}")


def is_head_layer(layer) -> bool:
  return layer.name.startswith(HEAD_PREFIX)


def split_trainable_variables(model: keras.Model) -> tuple[list, list]:
  """(backbone variables, head variables) among the model's trainable variables.

  The paper (Appendix A.5, from DeepLab-v2) trains the final classification layer, here the
  ASPP head, at 10x the learning rate of the rest; the trainer gives each group its optimizer.
  """
  head_ids = {id(v) for layer in model.layers if is_head_layer(layer)
              for v in layer.trainable_variables}
  backbone = [v for v in model.trainable_variables if id(v) not in head_ids]
  head = [v for v in model.trainable_variables if id(v) in head_ids]
  if not head:
    raise SegmenterError(f"Model {model.name!r} has no trainable {HEAD_PREFIX!r} layers.")
  return backbone, head


def aspp_rates_of(model: keras.Model) -> tuple[int, ...]:
  """Dilation rates of the model's ASPP branches, in layer order."""
  return tuple(int(layer.dilation_rate[0]) for layer in model.layers
               if is_head_layer(layer) and isinstance(layer, keras.layers.Conv2D))


def upsample_logits(logits, label_size, stride: int | None = LOGIT_STRIDE):
  """Bilinear upsampling of logits [B, h, w, K] to the labels' [H, W].

  With `stride` (the default, 8), logit (i, j) stands for the pixel block [s*i, s*i + s) x
  [s*j, s*j + s) of an input padded at the bottom / right to a multiple of s, which is how the
  codec pads images and how both -d nets see their input. The logits are resized to the padded
  size (s*h, s*w), where every block's centre lands on its logit (half-pixel centres), and then
  cropped to the label size. A plain resize to an odd label size would instead stretch the grid
  and shift the blocks by up to half a block.

  Args:
    logits: [B, h, w, K].
    label_size: (H, W), Python ints or scalar int tensors.
    stride: pixels per logit; None resizes straight to (H, W).

  Returns:
    float32 logits [B, H, W, K].

  Raises:
    SegmenterError: (static shapes only) the labels do not fit the logits' padded grid, i.e. the
      input and label sizes do not belong together.
  """
  height, width = label_size
  if stride is None:
    return tf.image.resize(logits, (height, width), method="bilinear")
  grid_h, grid_w = logits.shape[1], logits.shape[2]
  for grid, size, what in ((grid_h, height, "height"), (grid_w, width, "width")):
    if isinstance(grid, int) and isinstance(size, int) and not (
        stride * (grid - 1) < size <= stride * grid):
      raise SegmenterError(
          f"Label {what} {size} does not belong to {grid} logits at stride {stride} (expected "
          f"{stride * (grid - 1) + 1} .. {stride * grid}); are the input and the label of the "
          "same image?")
  shape = tf.shape(logits)
  padded = tf.image.resize(logits, (shape[1] * stride, shape[2] * stride), method="bilinear")
  return padded[:, :height, :width, :]


# --- Initialisation from a classifier of the same arm ----------------------------------------


def init_backbone_from_classifier(segmenter: keras.Model, classifier: keras.Model,
                                  skip: Sequence[str] = ("logits",)) -> list[str]:
  """Copies a trained classifier's weights into the segmenter's backbone, layer by layer by name.

  Both come from `build_resnet` (with and without the top), so every backbone layer has the same
  name and weight shapes in both; the classifier's dense "logits" layer has no counterpart and is
  skipped (the ASPP head keeps its initialisation). Dilation changes no weight shape, so a
  classifier at stride 32 initialises a -d segmenter directly.

  Returns:
    Names of the layers copied.

  Raises:
    SegmenterError: a classifier layer has no same-named layer in the segmenter, the shapes of
      a layer's weights differ (another net, width or input channel count), or nothing matched.
  """
  copied = []
  for layer in classifier.layers:
    if layer.name in skip or not layer.weights:
      continue
    try:
      target = segmenter.get_layer(layer.name)
    except ValueError:
      raise SegmenterError(
          f"Classifier layer {layer.name!r} has no counterpart in {segmenter.name!r}; was the "
          "classifier built for another net?") from None
    source_weights = layer.get_weights()
    target_shapes = [tuple(w.shape) for w in target.weights]
    if [tuple(w.shape) for w in source_weights] != target_shapes:
      raise SegmenterError(
          f"Layer {layer.name!r}: classifier weights {[w.shape for w in source_weights]} do "
          f"not fit the segmenter's {target_shapes}; the width multiplier or the input "
          "channels differ.")
    target.set_weights(source_weights)
    copied.append(layer.name)
  if not copied:
    raise SegmenterError(f"No layer of {classifier.name!r} matched {segmenter.name!r}.")
  # A classifier with fewer units (e.g. a truncated test net) would leave part of the backbone
  # random without any error above: refuse that too.
  missing = [layer.name for layer in segmenter.layers
             if layer.weights and not is_head_layer(layer) and layer.name not in copied]
  if missing:
    raise SegmenterError(
        f"{len(missing)} backbone layers of {segmenter.name!r} have no counterpart in "
        f"{classifier.name!r} (first: {missing[0]!r}); was it built for a shorter net?")
  return copied


def _checkpoint_prefix(path: str) -> str:
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise SegmenterError(f"No TensorFlow checkpoint in {path}.")
    return latest
  return path


def load_classifier(path: str, net_name: str, input_shape=None,
                    width_multiplier: float = 1.0) -> keras.Model:
  """Loads a classifier trained on the same arm, to initialise a segmenter from.

  Accepts, in this order:
    - a `.keras` file (keras.Model.save), or a folder holding exactly one;
    - a tf.train.Checkpoint (a folder, via its `checkpoint` index file, or a prefix) that saved
      the `build_resnet(net_name, ..., include_top=True)` model under one attribute, e.g.
      `tf.train.Checkpoint(model=classifier, optimizer=...)`. The number of classes is read off
      the checkpoint (the one rank-2 kernel is the logits layer), the classifier is rebuilt
      with `width_multiplier` and restored; every classifier variable must be found.

  Raises:
    SegmenterError: nothing loadable at `path`, or it does not fit net / width / channels.
  """
  if path.endswith(".keras") or (os.path.isdir(path) and any(
      f.endswith(".keras") for f in os.listdir(path))):
    if os.path.isdir(path):
      files = sorted(f for f in os.listdir(path) if f.endswith(".keras"))
      if len(files) != 1:
        raise SegmenterError(f"{path} holds {len(files)} .keras files; pass one of them.")
      path = os.path.join(path, files[0])
    return keras.models.load_model(path, compile=False)

  prefix = _checkpoint_prefix(path)
  try:
    variables = tf.train.list_variables(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise SegmenterError(f"{path} is not a readable checkpoint ({e}).") from None
  # Keras 3 functional models are tracked as <attr>/_operations/<i>/<weight>.
  roots = {name.split("/")[0] for name, _ in variables if "/_operations/" in name}
  dense = [(name, shape) for name, shape in variables
           if "/_operations/" in name and name.split("/")[-3] == "_kernel" and len(shape) == 2]
  if len(roots) != 1 or len(dense) != 1:
    raise SegmenterError(
        f"{path} does not look like a checkpoint of one build_resnet classifier (found model "
        f"attributes {sorted(roots)} and {len(dense)} dense kernels).")
  root, (_, (_, num_classes)) = roots.pop(), dense[0]
  try:
    classifier = resnet_lib.build_resnet(net_name, input_shape=input_shape,
                                         num_classes=num_classes,
                                         width_multiplier=width_multiplier)
  except ValueError as e:
    raise SegmenterError(str(e)) from None
  try:
    status = tf.train.Checkpoint(**{root: classifier}).restore(prefix)
    status.expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    raise SegmenterError(
        f"{path} does not fit a {net_name} classifier at width {width_multiplier} with input "
        f"{input_shape}: {str(e).splitlines()[0]}") from None
  return classifier


# --- Multiply-adds at the paper's sizes ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CostRow:
  """Multiply-adds of one segmentation arm for one image of `image_size`."""

  net: str  # e.g. "resnet50-d"
  input: str  # "decoded RGB" or "latent"
  input_shape: tuple  # of the segmenter, without the batch
  segmenter: int  # backbone + ASPP head
  head: int  # the ASPP head alone
  decoder: int  # the codec's decoder producing the RGB input (0 for the latent arm)

  @property
  def with_decoder(self) -> int:
    return self.segmenter + self.decoder


def segmentation_costs(image_size: int = 320, num_classes: int = 21,
                       operating_point: str = "0.0983",
                       nets: Sequence[str] = SEGMENTATION_NETS,
                       codec_filters=operating_points.PAPER_FILTERS) -> list[CostRow]:
  """Multiply-adds of full-size segmenters for an image_size x image_size image.

  The paper's training crop is 320x320 (a 40x40 latent); its Fig. 6 is at the 0.0983 bpp point
  (C = 8) on VOC (21 classes). RGB nets read the decoded image, and so pay for the decoder run
  on the latent; cResNets read the latent and pay nothing more.
  """
  # Imported here: the nets do not otherwise depend on the codec package.
  from tfcdi.codec import model as codec_model  # pylint: disable=g-import-not-at-top
  if image_size % LOGIT_STRIDE:
    raise SegmenterError(f"image_size must be a multiple of {LOGIT_STRIDE}, got {image_size}.")
  channels = operating_points.get_operating_point(operating_point).channels
  latent_side = image_size // LOGIT_STRIDE
  latent_shape = (latent_side, latent_side, channels)
  decoder = flops_lib.count_multiply_adds(
      codec_model.build_decoder(channels, codec_filters), latent_shape)
  rows = []
  for name in nets:
    spec = specs_lib.get_spec(name)
    shape = (image_size, image_size, 3) if spec.include_root else latent_shape
    model = build_segmenter(name, num_classes, (None, None, shape[-1]),
                            kernel_initializer="zeros")
    by_layer = flops_lib.multiply_adds_by_layer(model, shape)
    head = sum(v for k, v in by_layer.items() if k.startswith(HEAD_PREFIX))
    rows.append(CostRow(
        net=f"{name}-d", input="decoded RGB" if spec.include_root else "latent",
        input_shape=shape, segmenter=sum(by_layer.values()), head=head,
        decoder=decoder if spec.include_root else 0))
  return rows


def cost_comparison(rows: Sequence[CostRow], published_1e9: dict | None = None) -> list[dict]:
  """JSON-ready rows: each net's cost, and how much each cResNet-d saves against each ResNet-d.

  `published_1e9` is paper_numbers.json's "claims"; its segmentation savings (3.3e9 at fixed
  mIoU, 6.1e9 counting the decoder) are read off the paper's mIoU-vs-cost curve (Fig. 6), not a
  difference of two particular nets, so they are set beside these differences, not equated.
  """
  published_1e9 = published_1e9 or {}
  out = [{"net": r.net, "input": r.input, "input_shape": list(r.input_shape),
          "segmenter_1e9": r.segmenter / 1e9, "aspp_head_1e9": r.head / 1e9,
          "decoder_1e9": r.decoder / 1e9, "with_decoder_1e9": r.with_decoder / 1e9}
         for r in rows]
  for rgb in (r for r in rows if r.decoder):
    for latent in (r for r in rows if not r.decoder):
      out.append({
          "comparison": f"{rgb.net} on decoded RGB minus {latent.net} on the latent",
          "saving_1e9": (rgb.segmenter - latent.segmenter) / 1e9,
          "saving_with_decoder_1e9": (rgb.with_decoder - latent.with_decoder) / 1e9,
          "published_saving_at_fixed_miou_1e9":
              published_1e9.get("segmentation_flops_saving_at_fixed_miou_1e9"),
          "published_saving_with_decoder_1e9":
              published_1e9.get("segmentation_flops_saving_incl_decoding_1e9"),
      })
  return out
