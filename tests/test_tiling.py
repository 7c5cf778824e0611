"""Tiled coding (tfcdi/codec/tiling.py): the same files and pixels as whole-image coding.

The shipped codecs, one per family, on a Kodak crop whose sides are not multiples of the tile
or of the downsampling, with tiles far smaller than the image, so that every kind of tile (the
image's corners and edges, the interior) is exercised.
"""

import os

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.codec import tiling

KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kodak")
# Sides that are multiples of neither 8 nor 16, nor of the tiles below.
HEIGHT, WIDTH = 203, 331
# Cores of 64 pixels, smaller than the margins (80-96 pixels): 4-6 tiles per side of the crop.
TILE_PIXELS = 64


@pytest.fixture(scope="module", name="image")
def fixture_image():
  with Image.open(os.path.join(KODAK, "kodim23.png")) as f:
    return np.asarray(f.convert("RGB"))[100:100 + HEIGHT, 200:200 + WIDTH]


@pytest.fixture(scope="module", name="codec", params=["autoencoder 0.635", "hyperprior q1"])
def fixture_codec(request):
  family, selection = request.param.split()
  if family == "autoencoder":
    return pretrained.load_codec(selection)
  return pretrained.load_codec(path=os.path.join(pretrained.PRETRAINED_DIR,
                                                 f"hyperprior_{selection}.npz"))


def _whole_image_decode(codec, data) -> np.ndarray:
  """What decompress gave before tiling: the synthesis of the whole latent at once."""
  header, symbols = codec.read_symbols(data)
  images = np.asarray(codec.reconstruct({k: v[None] for k, v in symbols.items()}))
  height, width = header.image_size
  return np.clip(np.rint(images[0, :height, :width]), 0, 255).astype(np.uint8)


def test_tiled_compress_writes_the_bytes_of_a_whole_image_encode(codec, image):
  whole = codec.batch_compressor(None)(image[None].astype(np.float32), image.shape[:2])[0]
  codec.tile_pixels = TILE_PIXELS
  try:
    assert codec.tile == TILE_PIXELS // codec.downsampling
    tiled = codec.compress(image)
  finally:
    del codec.tile_pixels  # back to the family's default
  assert tiled == whole


def test_tiled_decompress_gives_the_pixels_of_a_whole_image_decode(codec, image):
  data = codec.compress(image)
  whole = _whole_image_decode(codec, data)
  codec.tile_pixels = TILE_PIXELS
  try:
    tiled = codec.decompress(data)
  finally:
    del codec.tile_pixels
  assert tiled.shape == (HEIGHT, WIDTH, 3)
  # The same arithmetic on the same numbers; a kernel may sum a crop's in another order, which
  # can move a float sample across a rounding edge by one grey level, rarely.
  difference = np.abs(tiled.astype(int) - whole.astype(int))
  assert difference.max() <= 1
  assert np.count_nonzero(difference) <= difference.size // 10_000


def test_the_computed_reach_bounds_how_far_one_latent_moves_the_pixels(codec, image):
  data = codec.compress(image)
  _, symbols = codec.read_symbols(data)
  name = codec.symbol_names[0]
  # A latent in the middle of a 24 x 24 crop of the file's, moved by a lot.
  crop = {k: v[None, :24, :24] for k, v in symbols.items()}
  moved = {k: v.copy() for k, v in crop.items()}
  if codec.family == "hyperprior":
    moved[name][0, 12, 12] += 8
  else:  # the next center
    moved[name][0, 12, 12] = (moved[name][0, 12, 12] + 1) % codec.num_centers
  changed = np.any(np.asarray(codec.reconstruct(moved)) != np.asarray(codec.reconstruct(crop)),
                   axis=(0, 3))
  rows, cols = np.nonzero(changed)
  assert rows.size, "moving a latent changed no pixel"
  reach = tiling.reach(codec.synthesis_model())
  d = codec.downsampling
  # The latent's block of pixels starts at 12 d; nothing beyond the reach of it may change.
  for positions in (rows, cols):
    assert positions.min() >= 12 * d - reach and positions.max() <= 12 * d + d - 1 + reach


def test_the_computed_reach_bounds_how_far_one_pixel_moves_the_latent(codec, image):
  crop = image[:128, :128].astype(np.float32)
  moved = crop.copy()
  moved[64, 64] = 255 - moved[64, 64]
  transform = codec.analysis_model()
  changed = np.any(np.asarray(transform(moved[None])) != np.asarray(transform(crop[None])),
                   axis=(0, 3))
  rows, cols = np.nonzero(changed)
  assert rows.size, "moving a pixel changed no latent"
  reach = tiling.reach(transform)
  d = codec.downsampling
  for positions in (rows, cols):  # latent i sits at pixel d i
    assert (d * positions.min() >= 64 - reach) and (d * positions.max() <= 64 + reach)


def test_reach_sums_each_convolutions_kernel_at_its_resolution():
  # The autoencoder's encoder: 5x5 at 1 and 2 px, six 3x3 at 4 px, 5x5 at 4 px.
  assert tiling.reach(model_lib.build_encoder(4)) == 4 * 1 + 4 * 2 + 6 * 2 * 4 + 4 * 4
  assert tiling.reach(model_lib.build_decoder(4)) == 4 * 4 + 6 * 2 * 4 + 4 * 2 + 4 * 1


def test_reach_refuses_a_layer_whose_field_it_does_not_know():
  inputs = keras.Input((None, None, 3))
  model = keras.Model(inputs, keras.layers.MaxPooling2D(3)(inputs))
  with pytest.raises(ValueError, match="cannot bound the receptive field"):
    tiling.reach(model)


@pytest.mark.parametrize("length,tile,extra", [(1, 4, 3), (10, 4, 3), (12, 4, 0), (7, 7, 2),
                                               (5, 100, 1)])
def test_spans_cover_each_position_once_and_crops_hold_their_margin(length, tile, extra):
  spans = tiling.spans(length, tile, extra)
  covered = np.zeros(length, int)
  for start, end, crop_start, crop_end in spans:
    covered[start:end] += 1
    assert crop_start == max(start - extra, 0) and crop_end == min(end + extra, length)
  assert covered.tolist() == [1] * length


def test_spans_refuse_an_empty_tile():
  with pytest.raises(ValueError, match="at least one latent position"):
    tiling.spans(10, 0, 2)


def test_a_non_finite_pixel_in_any_tile_is_an_error_not_black_pixels(codec, image):
  data = codec.compress(image[:40, :40])
  codec.tile_pixels = 32  # 2 x 2 tiles in both families
  original, calls = codec.reconstruct, []

  def nan_in_the_last_tile(symbols):
    calls.append(1)
    out = np.asarray(original(symbols))
    return tf.constant(np.full_like(out, np.nan) if len(calls) == 4 else out)

  codec.reconstruct = nan_in_the_last_tile
  try:
    with pytest.raises(bitstream.BitstreamError, match="non-finite pixels"):
      codec.decompress(data)
  finally:
    del codec.reconstruct, codec.tile_pixels
  assert len(calls) == 4


def test_the_integer_hyper_synthesis_in_tiles_gives_the_indices_of_one_pass():
  codec = pretrained.load_codec(path=os.path.join(pretrained.PRETRAINED_DIR, "hyperprior_q1.npz"))
  synthesis = codec.model.integer_hyper_synthesis()
  side = synthesis.TILE + 5  # two tiles a side, the last a partial one
  z = np.random.default_rng(0).integers(-4, 5, (1, side, side - 2, codec.num_filters))
  tiled = synthesis(z)
  assert tiled.shape == (1, 4 * side, 4 * (side - 2), codec.channels)
  np.testing.assert_array_equal(tiled, synthesis._indices(z))  # pylint: disable=protected-access
  assert synthesis.reach() == 4 * 2 + 4 * 1 + 2 * 1  # 5x5/2, 5x5/2, 3x3/1, at y's resolution
