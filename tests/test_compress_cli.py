"""From image file to .tfci and back: image loading, the codec glue, and the two binaries.

Tiny random codecs (conftest.py) keep this fast; the binaries run in-process, and once as a real
subprocess to see what a user sees on stderr.
"""

import os
import struct
import subprocess
import sys
import zlib

from absl import flags
from absl.testing import flagsaver
import imagecodecs
import numpy as np
from PIL import Image
import pytest

from experiments import _cli as _cli_lib
from experiments import classify
from experiments import compress
from experiments import decompress
from tfcdi import imageio
from tfcdi import serving
from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _cli(module, *args):
  """Runs a binary's main in-process, with its flags parsed as from a command line."""
  with flagsaver.flagsaver():
    argv = flags.FLAGS([module.__name__, *map(str, args)])
    return module.main(argv)


@pytest.fixture(scope="module", name="other_codec_path")
def fixture_other_codec_path(tmp_path_factory, make_tiny_codec):
  # Same name as the tiny codec, other frequency table: only the fingerprint tells them apart.
  path = tmp_path_factory.mktemp("other") / "other.npz"
  make_tiny_codec(path, name="tiny", counts=np.arange(1, 7))
  return str(path)


# --- the codec glue ---------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(17, 33), (1, 1), (8, 8), (9, 200)])
def test_decompress_gives_the_models_reconstruction_at_the_original_size(tiny_codec, height,
                                                                         width):
  image = _image(height, width, seed=height)
  data = coding.compress_image(tiny_codec, image)
  decoded = coding.decompress_bytes(data, tiny_codec)

  padded, _ = model_lib.pad_to_multiple(image[None].astype(np.float32))
  symbols = tiny_codec.model.encode(padded)
  expected = model_lib.crop_to(tiny_codec.model.decode(symbols), (height, width))[0].numpy()
  assert decoded.shape == (height, width, 3) and decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded, np.rint(expected).astype(np.uint8))
  header, read = coding.read_symbols(data, tiny_codec)
  np.testing.assert_array_equal(read, symbols[0].numpy())
  assert header.image_size == (height, width)


def test_another_codecs_file_is_refused(tiny_codec, other_codec_path):
  data = coding.compress_image(tiny_codec, _image(16, 16))
  with pytest.raises(pretrained.CodecError, match="made by codec 'tiny'"):
    coding.read_symbols(data, pretrained.load_codec(path=other_codec_path))


def test_header_that_does_not_fit_the_codec_is_refused(tiny_codec):
  # A well-formed file from the right codec, but a latent of the wrong size for its image.
  symbols = np.zeros((3, 3, tiny_codec.channels), np.int32)
  data = bitstream.encode(symbols, tiny_codec.frequencies, codec_name=tiny_codec.name,
                          fingerprint=tiny_codec.fingerprint, image_size=(16, 16))
  with pytest.raises(bitstream.BitstreamError, match="latent"):
    coding.read_symbols(data, tiny_codec)


def test_the_codec_a_file_names_is_found(tiny_codec, tiny_codec_path):
  header = bitstream.parse_header(coding.compress_image(tiny_codec, _image(8, 8)))
  found = coding.find_codec(header, search_dir=os.path.dirname(tiny_codec_path))
  assert found.fingerprint == tiny_codec.fingerprint
  with pytest.raises(pretrained.CodecError, match="--codec"):
    coding.find_codec(header, search_dir=os.path.dirname(os.path.dirname(tiny_codec_path)))


# --- image loading ----------------------------------------------------------------------------


def test_rgb_png_loads_unchanged(tmp_path):
  image = _image(5, 7)
  Image.fromarray(image).save(tmp_path / "rgb.png")
  loaded, notes = imageio.load_rgb(str(tmp_path / "rgb.png"))
  np.testing.assert_array_equal(loaded, image)
  assert notes == []


def test_grayscale_png_becomes_rgb(tmp_path):
  gray = _image(5, 7)[..., 0]
  Image.fromarray(gray, "L").save(tmp_path / "gray.png")
  loaded, notes = imageio.load_rgb(str(tmp_path / "gray.png"))
  np.testing.assert_array_equal(loaded, np.stack([gray] * 3, -1))
  assert notes == ["converted grayscale image to RGB"]


def test_transparency_is_composited_onto_white(tmp_path):
  rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 51]]], np.uint8)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
  loaded, notes = imageio.load_rgb(str(tmp_path / "rgba.png"))
  np.testing.assert_array_equal(loaded[0], [[200, 100, 0], [255, 255, 255], [244, 224, 204]])
  assert notes == ["composited the alpha channel onto white"]


def test_opaque_alpha_is_dropped(tmp_path):
  rgba = np.concatenate([_image(4, 4), np.full((4, 4, 1), 255, np.uint8)], -1)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
  loaded, notes = imageio.load_rgb(str(tmp_path / "opaque.png"))
  np.testing.assert_array_equal(loaded, rgba[..., :3])
  assert notes == ["dropped an alpha channel (fully opaque)"]


def test_16bit_grayscale_png_is_rescaled(tmp_path):
  gray = np.array([[0, 511, 32896, 65535]], np.uint16)
  (tmp_path / "g16.png").write_bytes(imagecodecs.png_encode(gray))
  loaded, notes = imageio.load_rgb(str(tmp_path / "g16.png"))
  np.testing.assert_array_equal(loaded[0, :, 0], [0, 2, 128, 255])  # v / 257, rounded
  np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])
  assert notes == ["converted grayscale image to RGB", "rescaled 16-bit samples to 8 bits"]


def test_16bit_rgb_png_is_rescaled_not_truncated(tmp_path):
  rgb = np.array([[[511, 0, 65535], [257, 33000, 128]]], np.uint16)
  (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode(rgb))
  loaded, notes = imageio.load_rgb(str(tmp_path / "rgb16.png"))
  # Pillow alone would give 511 -> 1 (the high byte); rescaling gives 2.
  np.testing.assert_array_equal(loaded[0], [[2, 0, 255], [1, 128, 0]])
  assert notes == ["rescaled 16-bit samples to 8 bits"]


def test_palette_png_becomes_rgb(tmp_path):
  indices = np.array([[0, 1], [2, 1]], np.uint8)
  image = Image.fromarray(indices, "P")
  image.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (3 * 253))
  image.save(tmp_path / "palette.png")
  loaded, notes = imageio.load_rgb(str(tmp_path / "palette.png"))
  np.testing.assert_array_equal(loaded, [[[10, 20, 30], [40, 50, 60]],
                                         [[70, 80, 90], [40, 50, 60]]])
  assert notes == ["converted palette image to RGB"]


def test_unreadable_files_raise_image_error(tmp_path):
  (tmp_path / "text.png").write_text("not an image\n")
  with pytest.raises(imageio.ImageError, match="not a readable image"):
    imageio.load_rgb(str(tmp_path / "text.png"))
  Image.fromarray(_image(64, 64)).save(tmp_path / "full.png")
  (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:-200])
  with pytest.raises(imageio.ImageError):
    imageio.load_rgb(str(tmp_path / "cut.png"))
  with pytest.raises(imageio.ImageError, match="no such file"):
    imageio.load_rgb(str(tmp_path / "missing.png"))


# --- the binaries -----------------------------------------------------------------------------


def test_file_round_trip(tmp_path, tiny_codec, tiny_codec_path, capsys):
  image = _image(13, 21)
  Image.fromarray(image).save(tmp_path / "photo.png")
  assert _cli(compress, f"--codec={tiny_codec_path}", tmp_path / "photo.png",
              tmp_path / "photo.tfci") == 0
  assert _cli(decompress, f"--codec={tiny_codec_path}", tmp_path / "photo.tfci",
              tmp_path / "back.png") == 0
  data = (tmp_path / "photo.tfci").read_bytes()
  back, _ = imageio.load_rgb(str(tmp_path / "back.png"))
  np.testing.assert_array_equal(back, coding.decompress_bytes(data, tiny_codec))
  out = capsys.readouterr()
  assert out.err == ""
  assert f"{len(data)} bytes, {8 * len(data) / (13 * 21):.4f} bpp" in out.out
  assert sorted(os.listdir(tmp_path)) == ["back.png", "photo.png", "photo.tfci"]  # no leftovers


def test_classification_view_compresses_the_square_view_the_classifiers_read(
    tmp_path, tiny_codec, tiny_codec_path, capsys):
  image = _image(300, 400)
  Image.fromarray(image).save(tmp_path / "photo.png")
  assert _cli(compress, f"--codec={tiny_codec_path}", "--classification_view",
              tmp_path / "photo.png", tmp_path / "photo.tfci") == 0
  data = (tmp_path / "photo.tfci").read_bytes()
  # The same bytes as a latent store's entry: shorter side 256, central square.
  assert data == serving.compress_for_classification(tiny_codec, image)
  assert bitstream.parse_header(data).latent_shape[:2] == (32, 32)
  assert "256x256 px" in capsys.readouterr().out


def test_folder_round_trip_skips_and_reports_bad_files(tmp_path, tiny_codec_path, capsys):
  source = tmp_path / "in"
  source.mkdir()
  Image.fromarray(_image(9, 10)[..., 0], "L").save(source / "gray.PNG")
  Image.fromarray(_image(16, 12)).save(source / "color.jpg")
  (source / "broken.png").write_text("not an image")
  (source / "notes.txt").write_text("ignored")
  assert _cli(compress, f"--codec={tiny_codec_path}", source, tmp_path / "tfci") == 1
  assert sorted(os.listdir(tmp_path / "tfci")) == ["color.tfci", "gray.tfci"]
  out = capsys.readouterr()
  assert "converted grayscale image to RGB" in out.out
  assert out.err.count("\n") == 1 and out.err.startswith("error: ") and "broken.png" in out.err

  assert _cli(decompress, f"--codec={tiny_codec_path}", tmp_path / "tfci", tmp_path / "out") == 0
  assert Image.open(tmp_path / "out" / "gray.png").size == (10, 9)
  assert Image.open(tmp_path / "out" / "color.png").size == (12, 16)


def test_another_codecs_file_is_refused_by_the_binary(tmp_path, tiny_codec, other_codec_path,
                                                      capsys):
  (tmp_path / "a.tfci").write_bytes(coding.compress_image(tiny_codec, _image(8, 8)))
  assert _cli(decompress, f"--codec={other_codec_path}", tmp_path / "a.tfci",
              tmp_path / "a.png") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "made by codec 'tiny'" in err
  assert not (tmp_path / "a.png").exists()


def test_existing_output_is_kept_without_overwrite(tmp_path, tiny_codec_path, capsys):
  Image.fromarray(_image(8, 8)).save(tmp_path / "a.png")
  (tmp_path / "a.tfci").write_bytes(b"precious")
  assert _cli(compress, f"--codec={tiny_codec_path}", tmp_path / "a.png", tmp_path / "a.tfci") == 1
  assert (tmp_path / "a.tfci").read_bytes() == b"precious"
  assert "already exists" in capsys.readouterr().err
  assert _cli(compress, f"--codec={tiny_codec_path}", "--overwrite", tmp_path / "a.png",
              tmp_path / "a.tfci") == 0
  assert (tmp_path / "a.tfci").read_bytes()[:4] == b"TFCI"


def test_bad_arguments_are_one_line_errors(tmp_path, tiny_codec_path, capsys):
  Image.fromarray(_image(8, 8)).save(tmp_path / "a.png")
  assert _cli(compress, "--operating_point=0.5", tmp_path / "a.png", tmp_path / "a.tfci") == 1
  assert _cli(compress, tmp_path / "a.png") == 1
  assert _cli(compress, f"--codec={tmp_path / 'nothing.npz'}", tmp_path / "a.png",
              tmp_path / "a.tfci") == 1
  assert _cli(decompress, tmp_path / "missing.tfci", tmp_path / "b.png") == 1
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 4 and all(line.startswith("error: ") for line in err)
  assert "unknown operating point" in err[0] and "input and an output" in err[1]
  assert not (tmp_path / "a.tfci").exists()


def test_corrupted_file_exits_1_with_one_line_and_no_traceback(tmp_path, tiny_codec,
                                                               tiny_codec_path):
  data = bytearray(coding.compress_image(tiny_codec, _image(8, 8)))
  data[-1] ^= 0xFF
  (tmp_path / "bad.tfci").write_bytes(bytes(data))
  env = {**os.environ, "PYTHONPATH": REPO_ROOT}
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  result = subprocess.run(
      [sys.executable, "-m", "experiments.decompress", f"--codec={tiny_codec_path}",
       str(tmp_path / "bad.tfci"), str(tmp_path / "bad.png")],
      capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
  assert result.returncode == 1
  # Exactly one line: also no TensorFlow start-up logging.
  assert result.stderr.count("\n") == 1, result.stderr
  assert result.stderr.startswith("error: ") and "corrupted" in result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "bad.png").exists()


# --- hardening: what the binaries refuse, skip and say ------------------------------------------


def _never(*args, **kwargs):
  raise AssertionError("nothing may be decoded")


def _forged_huge_file(codec, side=16384):
  """A well-formed autoencoder file (header layout in bitstream.py) announcing a side x side
  image, with a 4-byte payload: what a forger writes to make a decoder allocate tens of GB."""
  name = codec.name.encode("ascii")
  head = (b"TFCI" + bytes([1, bitstream.FAMILY_AUTOENCODER, len(name)]) + name
          + struct.pack(">8sIIHHHBI", codec.fingerprint, side, side, side // 8, side // 8,
                        codec.channels, codec.num_centers, 4))
  payload = bytes(4)
  return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


def test_a_file_announcing_a_huge_image_is_refused_before_anything_is_decoded(
    tmp_path, tiny_codec, tiny_codec_path, monkeypatch, capsys):
  huge = tmp_path / "huge.tfci"
  huge.write_bytes(_forged_huge_file(tiny_codec))
  assert bitstream.parse_header(huge.read_bytes()).image_size == (16384, 16384)  # well-formed
  with monkeypatch.context() as patch:
    for module, name in ((coding, "decompress_bytes"), (coding, "read_symbols"),
                         (bitstream, "decode_symbols"), (pretrained, "load_codec")):
      patch.setattr(module, name, _never)
    assert _cli(decompress, huge, tmp_path / "huge.png") == 1
    assert _cli(classify, huge) == 1
  err = capsys.readouterr().err.splitlines()
  expected = (f"error: {huge}: the image the file announces is 16384x16384 pixels (268.4 "
              f"megapixels), more than --max_pixels={_cli_lib.DEFAULT_MAX_PIXELS}")
  assert len(err) == 2 and all(line.startswith(expected) for line in err)
  assert not (tmp_path / "huge.png").exists()
  # The limit is a flag: raised, the file goes on to decoding, where its forged payload fails
  # (its size alone says it cannot hold the symbols: still nothing big is allocated).
  assert _cli(decompress, f"--codec={tiny_codec_path}", "--max_pixels=300000000", huge,
              tmp_path / "huge.png") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "cannot hold the announced" in err


def test_a_file_announcing_a_huge_image_is_refused_at_once_without_loading_tensorflow(
    tmp_path, tiny_codec):
  # The binary as a user runs it: the refusal must not wait seconds for TensorFlow to load.
  huge = tmp_path / "huge.tfci"
  huge.write_bytes(_forged_huge_file(tiny_codec))
  code = ("import sys\n"
          "from experiments import decompress\n"
          "sys.argv = ['tfcdi-decompress', *sys.argv[1:]]\n"
          "try:\n"
          "  decompress.run()\n"
          "finally:\n"
          "  print('TENSORFLOW IMPORTED' if 'tensorflow' in sys.modules else 'no tensorflow',\n"
          "        file=sys.stderr)\n")
  result = subprocess.run([sys.executable, "-c", code, str(huge), str(tmp_path / "huge.png")],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
                          check=False)
  assert result.returncode == 1
  error, report = result.stderr.splitlines()
  assert error.startswith(f"error: {huge}: the image the file announces is 16384x16384 pixels")
  assert report == "no tensorflow"
  assert not (tmp_path / "huge.png").exists()


def test_compress_refuses_an_image_above_max_pixels(tmp_path, tiny_codec_path, capsys):
  Image.fromarray(_image(20, 30)).save(tmp_path / "a.png")
  assert _cli(compress, f"--codec={tiny_codec_path}", "--max_pixels=599", tmp_path / "a.png",
              tmp_path / "a.tfci") == 1
  assert "30x20 pixels" in capsys.readouterr().err and not (tmp_path / "a.tfci").exists()
  assert _cli(compress, f"--codec={tiny_codec_path}", "--max_pixels=600", tmp_path / "a.png",
              tmp_path / "a.tfci") == 0


def test_running_out_of_memory_on_one_file_is_one_line_and_the_others_go_on(
    tmp_path, tiny_codec, tiny_codec_path, monkeypatch, capsys):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  source = tmp_path / "in"
  source.mkdir()
  for name in ("a", "b", "c"):
    (source / f"{name}.tfci").write_bytes(coding.compress_image(tiny_codec, _image(8, 8)))
  real = coding.decompress_bytes
  failures = iter([MemoryError(), tf.errors.ResourceExhaustedError(None, None, "OOM when "
                                                                   "allocating tensor"), None])

  def decompress_bytes(data, codec=None):
    failure = next(failures)
    if failure is not None:
      raise failure
    return real(data, codec)

  monkeypatch.setattr(coding, "decompress_bytes", decompress_bytes)
  assert _cli(decompress, f"--codec={tiny_codec_path}", source, tmp_path / "out") == 1
  captured = capsys.readouterr()
  assert captured.err.splitlines() == [f"error: {source / n}.tfci: {_cli_lib.OUT_OF_MEMORY}"
                                       for n in ("a", "b")]
  assert os.listdir(tmp_path / "out") == ["c.png"]
  assert captured.out.splitlines()[-1] == "1 written, 2 failed, 0 skipped"


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_an_output_that_is_the_input_itself_is_refused(tmp_path, tiny_codec_path, capsys,
                                                       spelling):
  image = tmp_path / "same.png"
  Image.fromarray(_image(8, 8)).save(image)
  before = image.read_bytes()
  output = {"same": image, "dot": tmp_path / "." / "same.png", "symlink": tmp_path / "link.png",
            "hardlink": tmp_path / "hard.png"}[spelling]
  if spelling == "symlink":
    output.symlink_to(image)
  elif spelling == "hardlink":
    os.link(image, output)
  assert _cli(compress, f"--codec={tiny_codec_path}", "--overwrite", "--any_output_name",
              image, output) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "is the input file itself" in err
  assert image.read_bytes() == before


def test_compress_refuses_an_output_name_that_is_not_tfci_unless_told(tmp_path, tiny_codec_path,
                                                                      capsys):
  Image.fromarray(_image(8, 8)).save(tmp_path / "x.png")
  assert _cli(compress, f"--codec={tiny_codec_path}", tmp_path / "x.png", tmp_path / "x.jpg") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "must end in .tfci" in err
  assert not (tmp_path / "x.jpg").exists()
  assert _cli(compress, f"--codec={tiny_codec_path}", "--any_output_name", tmp_path / "x.png",
              tmp_path / "x.jpg") == 0
  assert (tmp_path / "x.jpg").read_bytes()[:4] == b"TFCI"


@pytest.mark.parametrize("name, fmt", [("back.png", "PNG"), ("back.jpg", "JPEG"),
                                       ("back.JPEG", "JPEG"), ("back.webp", "WEBP")])
def test_decompress_writes_the_format_the_output_name_asks_for(tmp_path, tiny_codec,
                                                               tiny_codec_path, name, fmt):
  data = coding.compress_image(tiny_codec, _image(16, 24))
  (tmp_path / "a.tfci").write_bytes(data)
  assert _cli(decompress, f"--codec={tiny_codec_path}", tmp_path / "a.tfci", tmp_path / name) == 0
  with Image.open(tmp_path / name) as written:
    assert written.format == fmt and written.size == (24, 16)
    pixels = np.asarray(written.convert("RGB"))
  if fmt != "JPEG":  # PNG and WebP (lossless) hold the decoded image exactly
    np.testing.assert_array_equal(pixels, coding.decompress_bytes(data, tiny_codec))


def test_decompress_refuses_an_output_name_of_another_format(tmp_path, tiny_codec,
                                                             tiny_codec_path, capsys):
  (tmp_path / "a.tfci").write_bytes(coding.compress_image(tiny_codec, _image(8, 8)))
  assert _cli(decompress, f"--codec={tiny_codec_path}", tmp_path / "a.tfci",
              tmp_path / "a.bmp") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "must end in .png, .jpg, .jpeg, .webp" in err
  assert not (tmp_path / "a.bmp").exists()


def test_a_folder_run_names_every_skipped_file_and_closes_with_a_summary(tmp_path,
                                                                         tiny_codec_path,
                                                                         capsys):
  source = tmp_path / "in"
  source.mkdir()
  for name in ("a", "b", "c"):
    Image.fromarray(_image(8, 8, seed=ord(name))).save(source / f"{name}.png")
  Image.fromarray(_image(8, 8)).save(source / "anim.gif")
  (source / "notes.txt").write_text("not an image")
  (source / "sub").mkdir()
  assert _cli(compress, f"--codec={tiny_codec_path}", source, tmp_path / "out") == 0
  out = capsys.readouterr().out.splitlines()
  assert f"skipped {source / 'anim.gif'}: not a png, jpg, jpeg, bmp, tif, tiff, webp file" in out
  assert f"skipped {source / 'notes.txt'}: not a png, jpg, jpeg, bmp, tif, tiff, webp file" in out
  assert f"skipped {source / 'sub'}: a folder (subfolders are not searched)" in out
  assert out[-1] == "3 written, 0 failed, 3 skipped"


def test_skip_existing_resumes_a_folder_run_that_was_stopped(tmp_path, tiny_codec_path, capsys):
  source, target = tmp_path / "in", tmp_path / "out"
  source.mkdir()
  for name in ("a", "b", "c"):
    Image.fromarray(_image(8, 8, seed=ord(name))).save(source / f"{name}.png")
  assert _cli(compress, f"--codec={tiny_codec_path}", source, target) == 0
  (target / "b.tfci").unlink()  # as if the run had been killed before b
  (target / "a.tfci").write_bytes(b"kept as it is")
  capsys.readouterr()

  # Without a word about existing outputs, each is an error (nothing is replaced).
  assert _cli(compress, f"--codec={tiny_codec_path}", source, target) == 1
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and all("--skip_existing" in line for line in err)
  (target / "b.tfci").unlink()

  assert _cli(compress, f"--codec={tiny_codec_path}", "--skip_existing", source, target) == 0
  captured = capsys.readouterr()
  assert captured.err == ""
  out = captured.out.splitlines()
  assert out[0] == (f"skipped {source / 'a.png'}: {target / 'a.tfci'} already exists "
                    "(--skip_existing)")
  assert out[1].startswith(f"{source / 'b.png'} -> {target / 'b.tfci'}: 8x8 px")
  assert out[-1] == "1 written, 0 failed, 2 skipped"
  assert (target / "a.tfci").read_bytes() == b"kept as it is"
  assert (target / "b.tfci").read_bytes()[:4] == b"TFCI"

  assert _cli(compress, f"--codec={tiny_codec_path}", "--skip_existing", "--overwrite", source,
              target) == 1
  assert "contradict" in capsys.readouterr().err


def test_messages_are_worded_alike(tmp_path, tiny_codec_path, capsys):
  Image.fromarray(_image(8, 8)).save(tmp_path / "a.png")
  (tmp_path / "a_file").write_text("a regular file")
  (tmp_path / "junk.tfci").write_bytes(b"JUNKJUNKJUNK")
  assert _cli(compress, tmp_path / "a.png") == 1
  assert _cli(compress, "--codec=jpeg", tmp_path / "a.png", tmp_path / "a.tfci") == 1
  assert _cli(compress, f"--codec={tiny_codec_path}", tmp_path / "a.png",
              tmp_path / "a_file" / "a.tfci") == 1
  assert _cli(decompress, tmp_path / "junk.tfci", tmp_path / "junk.png") == 1
  assert _cli(decompress, tmp_path / "missing.tfci", tmp_path / "m.png") == 1
  err = capsys.readouterr().err.splitlines()
  assert err[0].startswith("error: expected an input and an output path, got 1 argument. ")
  assert err[1] == ("error: --codec=jpeg is neither a codec family (autoencoder, hyperprior) nor "
                    "an existing codec bundle (.npz)")
  assert err[2] == (f"error: {tmp_path / 'a.png'}: cannot write {tmp_path / 'a_file' / 'a.tfci'}"
                    f": {tmp_path / 'a_file'} is a file, not a folder")
  assert err[3] == (f"error: {tmp_path / 'junk.tfci'}: not a .tfci file (it does not start with "
                    "the bytes TFCI)")
  assert err[4] == f"error: {tmp_path / 'missing.tfci'}: no such file or folder"
  assert "Errno" not in "\n".join(err) and "b'" not in "\n".join(err)
