"""DeepLab-v2 segmenters: output grids of both arms, the ASPP head, upsampling, initialisation."""

import functools
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcdi import nets
from tfcdi.nets import deeplab

_PAPER_NUMBERS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference",
                              "paper_numbers.json")
TINY = 0.125
NUM_CLASSES = 11


@functools.lru_cache(maxsize=None)
def _segmenter(name, channels=3):
  # Shared by the tests that only read the model (building one takes seconds on 2 cores).
  return deeplab.build_segmenter(name, NUM_CLASSES, (None, None, channels),
                                 width_multiplier=TINY)


def test_aspp_rates_are_the_papers():
  assert deeplab.ASPP_RATES == (6, 12, 18, 24)
  if not os.path.exists(_PAPER_NUMBERS):
    pytest.skip("shared/reference/paper_numbers.json is not beside the repo")
  with open(_PAPER_NUMBERS) as f:
    published = json.load(f)["training"]["segmentation"]["aspp_rates"]
  assert tuple(published) == deeplab.ASPP_RATES


def test_aspp_head_has_four_summed_branches_one_per_rate():
  model = _segmenter("cresnet39", channels=8)
  assert deeplab.aspp_rates_of(model) == (6, 12, 18, 24)
  branches = [layer for layer in model.layers if deeplab.is_head_layer(layer)
              and isinstance(layer, keras.layers.Conv2D)]
  assert all(b.kernel.shape[:2] == (3, 3) and b.filters == NUM_CLASSES for b in branches)
  assert isinstance(model.layers[-1], keras.layers.Add)
  # Each branch reads the backbone's last feature map.
  assert {b.input.name for b in branches} == {model.get_layer("conv5_3_out").output.name}


@pytest.mark.parametrize("size", [(64, 64), (57, 41), (40, 72)])
def test_rgb_net_predicts_at_one_eighth_and_upsamples_to_the_label(size):
  model = _segmenter("resnet50")
  logits = model(np.zeros((2, *size, 3), np.float32))
  grid = tuple(-(-s // 8) for s in size)
  assert logits.shape == (2, *grid, NUM_CLASSES)
  assert deeplab.upsample_logits(logits, size).shape == (2, *size, NUM_CLASSES)


@pytest.mark.parametrize("net,shape", [("cresnet39", (5, 7, 8)), ("cresnet51", (8, 8, 16)),
                                       ("cresnet39", (3, 4, 32))])
def test_cresnet_predicts_at_the_latents_resolution(net, shape):
  model = _segmenter(net, channels=shape[-1])
  logits = model(np.zeros((1, *shape), np.float32))
  assert logits.shape == (1, *shape[:2], NUM_CLASSES)
  # A latent of an H x W image: the label is H x W, up to 7 pixels less than 8h x 8w.
  label_size = (8 * shape[0] - 3, 8 * shape[1])
  assert deeplab.upsample_logits(logits, label_size).shape == (1, *label_size, NUM_CLASSES)


def test_both_arms_share_the_logit_grid_of_a_crop():
  # The paper's pairing: a 320 RGB crop and its 40 latent crop give logits of the same size.
  rgb = _segmenter("resnet50")(np.zeros((1, 80, 80, 3), np.float32))
  latent = _segmenter("cresnet39", channels=8)(np.zeros((1, 10, 10, 8), np.float32))
  assert rgb.shape == latent.shape == (1, 10, 10, NUM_CLASSES)


def test_upsampling_puts_each_logit_on_its_pixel_block():
  # Logits linear in the grid position: bilinear upsampling reproduces the line, so every pixel
  # gets the value at its own position on the logit grid, where logit (i, j) sits at the centre
  # (8i + 3.5, 8j + 3.5) of its block. A plain resize to 21 rows would put it elsewhere.
  rows, cols = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
  logits = tf.constant((10 * rows + cols).astype(np.float32)[None, ..., None])
  up = deeplab.upsample_logits(logits, (21, 32))[0, ..., 0].numpy()
  assert up.shape == (21, 32)
  position = (np.arange(32) + 0.5) / 8 - 0.5  # pixel -> logit grid coordinate
  for p in range(21):
    for q in range(32):
      if 0 <= position[p] <= 2 and 0 <= position[q] <= 3:  # inside the grid: no clamping
        assert up[p, q] == pytest.approx(10 * position[p] + position[q], abs=1e-4)


def test_upsampling_refuses_a_label_of_another_image():
  logits = tf.zeros([1, 5, 5, 2])
  with pytest.raises(deeplab.SegmenterError, match="does not belong"):
    deeplab.upsample_logits(logits, (48, 40))
  with pytest.raises(ValueError, match="does not belong"):
    deeplab.upsample_logits(logits, (40, 32))


def test_head_and_backbone_variables_are_split_for_their_learning_rates():
  model = _segmenter("cresnet39", channels=8)
  backbone, head = deeplab.split_trainable_variables(model)
  assert len(head) == 8  # four kernels, four biases
  assert all("aspp" in v.path for v in head)
  assert not any("aspp" in v.path for v in backbone)
  assert len(backbone) + len(head) == len(model.trainable_variables)


def test_backbone_is_build_resnets_dilated_net_not_a_copy():
  model = _segmenter("resnet50")
  backbone = nets.build_resnet("resnet50", include_top=False, width_multiplier=TINY,
                               output_stride="latent")
  names = [layer.name for layer in model.layers if not deeplab.is_head_layer(layer)]
  assert names == [layer.name for layer in backbone.layers]
  assert model.get_layer("conv5_2_conv2").dilation_rate == (4, 4)
  assert model.get_layer("conv4_2_conv2").dilation_rate == (2, 2)


def test_unknown_net_and_missing_channels_are_value_errors():
  with pytest.raises(ValueError, match="Unknown net"):
    deeplab.build_segmenter("vgg16", NUM_CLASSES)
  with pytest.raises(ValueError, match="channel"):
    deeplab.build_segmenter("cresnet39", NUM_CLASSES)


def _trained_looking_classifier(name, channels, num_classes=10, width=TINY):
  classifier = nets.build_resnet(name, input_shape=(None, None, channels), num_classes=num_classes,
                                 width_multiplier=width)
  rng = np.random.default_rng(0)
  classifier.set_weights([rng.normal(size=w.shape).astype(np.float32)
                          for w in classifier.get_weights()])
  return classifier


def test_initialisation_copies_every_backbone_layer_by_name():
  classifier = _trained_looking_classifier("cresnet39", 8)
  segmenter = _segmenter("cresnet39", channels=8)  # the other tests read shapes only
  head_before = [v.numpy() for v in deeplab.split_trainable_variables(segmenter)[1]]
  copied = deeplab.init_backbone_from_classifier(segmenter, classifier)
  assert "logits" not in copied and "conv5_3_conv3" in copied
  for layer in classifier.layers:
    if layer.name != "logits" and layer.weights:
      for a, b in zip(layer.get_weights(), segmenter.get_layer(layer.name).get_weights()):
        np.testing.assert_array_equal(a, b)
  for before, after in zip(head_before, deeplab.split_trainable_variables(segmenter)[1]):
    np.testing.assert_array_equal(before, after.numpy())


def test_initialisation_from_another_width_is_refused():
  classifier = _trained_looking_classifier("cresnet39", 8, width=0.25)
  with pytest.raises(deeplab.SegmenterError, match="width multiplier"):
    deeplab.init_backbone_from_classifier(_segmenter("cresnet39", channels=8), classifier)


def test_classifier_loads_from_a_checkpoint_folder_and_a_keras_file(tmp_path):
  classifier = _trained_looking_classifier("cresnet39", 8, num_classes=7)
  optimizer = keras.optimizers.SGD(0.1)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=classifier, optimizer=optimizer),
                             str(tmp_path / "ckpt"), max_to_keep=1).save()
  loaded = deeplab.load_classifier(str(tmp_path / "ckpt"), "cresnet39", (None, None, 8), TINY)
  assert loaded.get_layer("logits").units == 7
  for a, b in zip(classifier.get_weights(), loaded.get_weights()):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(deeplab.SegmenterError):
    deeplab.load_classifier(str(tmp_path / "ckpt"), "cresnet51", (None, None, 8), TINY)

  classifier.save(str(tmp_path / "classifier.keras"))
  loaded = deeplab.load_classifier(str(tmp_path), "cresnet39", (None, None, 8), TINY)
  np.testing.assert_array_equal(loaded.get_weights()[0], classifier.get_weights()[0])


def test_segmentation_costs_at_the_papers_crop():
  rows = {r.net: r for r in deeplab.segmentation_costs(320, num_classes=21,
                                                       nets=("resnet50", "cresnet39"))}
  # ASPP: 4 branches x 3x3 x 2048 x 21 multiply-adds per position of the 40x40 grid.
  assert rows["resnet50-d"].head == rows["cresnet39-d"].head == 4 * 9 * 2048 * 21 * 40 * 40
  assert rows["resnet50-d"].input_shape == (320, 320, 3)
  assert rows["cresnet39-d"].input_shape == (40, 40, 8)
  assert rows["cresnet39-d"].decoder == 0 and rows["resnet50-d"].decoder > 0
  comparison = deeplab.cost_comparison(
      list(rows.values()), {"segmentation_flops_saving_at_fixed_miou_1e9": 3.3,
                            "segmentation_flops_saving_incl_decoding_1e9": 6.1})
  saving = [c for c in comparison if "comparison" in c][0]
  assert saving["saving_with_decoder_1e9"] == pytest.approx(
      saving["saving_1e9"] + rows["resnet50-d"].decoder / 1e9)
  assert saving["published_saving_with_decoder_1e9"] == 6.1
