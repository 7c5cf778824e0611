"""Makes the CompressAI parity fixtures, running CompressAI itself (in its own environment).

CompressAI pins numpy<2 and needs torch, neither of which tfcdi's environment may hold, so this
tool runs in a separate venv and the tests read only what it writes:

  python -m venv /work/venvs/compressai
  /work/venvs/compressai/bin/pip install torch==2.13.0 compressai      # compressai 1.2.8 here
  /work/venvs/compressai/bin/python tools/compressai_fixtures.py \
      --image=../shared/data/kodak/kodim23.png --output_dir=tests/fixtures/compressai

For each architecture and two qualities (one N=128/M=192, one N=192/M=320) it fills the
CompressAI model with pseudo-random weights from a recipe (tfcdi/codec/importers/synthetic.py:
the tests regenerate the same weights from it without torch; full-size weights are far too
large to commit), runs the model's own pieces in eval mode on a 64x64 crop of the image, and
writes <architecture>_q<Q>.npz: the recipe, the crop, y, z, their quantized values, the scales
(and means), both likelihoods and x_hat. For each architecture it also writes a tiny model
(N=8, M=12) saved by torch.save(model.state_dict()) as <architecture>_tiny.pth, with its recipe
in <architecture>_tiny.npz: the torch-free checkpoint reader is tested on those real files.

--kodak_check=DIR instead writes, for one --architecture and --quality, a checkpoint of the
model at CompressAI's own random initialisation (DIR/<arch>_q<Q>_init.pth) and its forward pass
on the whole image (DIR/<arch>_q<Q>_init_forward.npz: x_hat, bpp from the likelihoods), for the
end-to-end check of BUILD_NOTES.md ("Imported CompressAI codecs").

torchvision: compressai imports it only for its dataset-transform registry, and the torchvision
wheel PyPI serves is linked against CUDA torch, so it cannot load beside the CPU torch wheel
used here ("operator torchvision::nms does not exist"). The models this tool runs never touch
it; it is replaced by an empty module before compressai is imported.
"""

import argparse
import json
import math
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tfcdi.codec.importers import synthetic  # noqa: E402  (pure NumPy)

FIXTURE_QUALITIES = {"bmshj2018-factorized": (3, 6), "bmshj2018-hyperprior": (3, 6),
                     "mbt2018-mean": (3, 5)}
CROP = 64
SEED = 20


def import_compressai():
  """(compressai, torch, compressai.zoo.image), torchvision replaced by an empty module first
  (see above); compressai_timing.py imports it from here."""
  torchvision = types.ModuleType("torchvision")
  torchvision.transforms = types.ModuleType("torchvision.transforms")
  sys.modules.setdefault("torchvision", torchvision)
  sys.modules.setdefault("torchvision.transforms", torchvision.transforms)
  import compressai  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  from compressai.zoo import image  # pylint: disable=import-outside-toplevel
  return compressai, torch, image


def _entry(name: str, value, transposed: set) -> dict:
  """How the recipe makes one tensor: weights spread like a He-style initialisation (scaled so
  that y spans several integers, which exercises rounding and the tables), GDN parameters and
  the density around sensible values, medians off the integers, buffers verbatim."""
  shape = list(value.shape)
  entry = {"name": name, "shape": shape}
  if name.endswith(".weight"):
    out_in = (shape[0], shape[1]) if name not in transposed else (shape[1], shape[0])
    fan_in = out_in[1] * shape[2] * shape[3] / (4.0 if name in transposed and shape[2] == 5
                                                else 1.0)
    gain = 3.0 if name.startswith("g_a.6") else 1.0  # y's scale: a few units
    entry.update(spread=gain * math.sqrt(3.0 / fan_in))
  elif name.endswith(".bias") and not name.startswith("entropy_bottleneck"):
    entry.update(spread=0.05)
  elif name.endswith(".beta") and value.ndim == 1:
    entry.update(loc=1.0, spread=0.2)
  elif name.endswith(".gamma"):
    entry.update(loc=0.06, spread=0.05, diagonal=0.25)
  elif ".matrices." in name:
    entry.update(loc=float(value.flatten()[0]), spread=0.3)
  elif ".biases." in name:
    entry.update(spread=0.8)
  elif ".factors." in name:
    entry.update(spread=0.8)
  elif name.endswith("quantiles"):
    rng = synthetic.uniform(SEED, name, (shape[0],)) * 0.5  # medians in [-0.5, 0.5)
    q = np.stack([rng - 10.0, rng, rng + 10.0], axis=-1).reshape(shape)
    entry.update(values=q.astype(np.float32).reshape(-1).tolist())
  else:  # buffers: bounds, pedestals, CompressAI's (empty) coder state
    entry.update(values=value.detach().cpu().numpy().reshape(-1).tolist(),
                 dtype=str(value.detach().cpu().numpy().dtype))
  return entry


def _recipe(torch, model) -> dict:
  transposed = {f"{name}.weight" for name, module in model.named_modules()
                if isinstance(module, torch.nn.ConvTranspose2d)}
  return {"seed": SEED, "tensors": [_entry(k, v, transposed)
                                    for k, v in model.state_dict().items()]}


def _load_recipe(torch, model, recipe) -> None:
  arrays = synthetic.state_dict(recipe)
  model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                         arrays.items()}, strict=True)


def _nhwc(t):
  return np.ascontiguousarray(t.detach().cpu().numpy().transpose(0, 2, 3, 1))


def _forward(torch, model, family: str, image: np.ndarray) -> dict:
  """The model's own pieces, in eval mode, on one uint8 image; NHWC float32 arrays."""
  x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
  out = {}
  with torch.no_grad():
    y = model.g_a(x)
    out["y"] = y
    if family == "bmshj2018-factorized":
      y_hat, y_likelihoods = model.entropy_bottleneck(y)
    else:
      z = model.h_a(torch.abs(y) if family == "bmshj2018-hyperprior" else y)
      z_hat, z_likelihoods = model.entropy_bottleneck(z)
      params = model.h_s(z_hat)
      if family == "mbt2018-mean":
        scales, means = params.chunk(2, 1)
        out["means"] = means
      else:
        scales, means = params, None
      y_hat, y_likelihoods = model.gaussian_conditional(y, scales, means=means)
      out.update(z=z, z_hat=z_hat, z_likelihoods=z_likelihoods, scales=scales)
    out.update(y_hat=y_hat, y_likelihoods=y_likelihoods, x_hat=model.g_s(y_hat))
    whole = model(x)
    if not torch.equal(whole["x_hat"], out["x_hat"]):
      raise SystemExit(f"{family}: the pieces do not give the model's own forward pass")
  arrays = {k: _nhwc(v) for k, v in out.items()}
  bits = sum(-np.log2(_nhwc(v).astype(np.float64)).sum() for v in whole["likelihoods"].values())
  arrays["bpp"] = np.asarray(bits / (image.shape[0] * image.shape[1]))
  return arrays


def _image(path: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def make_fixtures(image_path: str, output_dir: str) -> None:
  compressai, torch, zoo = import_compressai()
  image = _image(image_path)
  top, left = (image.shape[0] - CROP) // 2, (image.shape[1] - CROP) // 2
  crop = np.ascontiguousarray(image[top:top + CROP, left:left + CROP])
  versions = {"compressai": compressai.__version__, "torch": torch.__version__,
              "numpy": np.__version__, "image": os.path.basename(image_path),
              "crop": [top, left, CROP]}
  os.makedirs(output_dir, exist_ok=True)
  for arch, qualities in FIXTURE_QUALITIES.items():
    cls = zoo.model_architectures[arch]
    for quality in qualities:
      n, m = zoo.cfgs[arch][quality]
      model = cls(n, m).eval()
      recipe = _recipe(torch, model)
      _load_recipe(torch, model, recipe)
      arrays = _forward(torch, model, arch, crop)
      path = os.path.join(output_dir, f"{arch}_q{quality}.npz")
      np.savez_compressed(path, recipe=np.frombuffer(synthetic.dumps(recipe), np.uint8),
                          image=crop, versions=np.frombuffer(json.dumps(versions).encode(),
                                                             np.uint8), **arrays)
      print(f"{path}: {os.path.getsize(path)} bytes, y in [{arrays['y'].min():.2f}, "
            f"{arrays['y'].max():.2f}], {float(arrays['bpp']):.3f} bpp")
    model = cls(8, 12).eval()
    recipe = _recipe(torch, model)
    _load_recipe(torch, model, recipe)
    pth = os.path.join(output_dir, f"{arch}_tiny.pth")
    torch.save(model.state_dict(), pth)
    np.savez_compressed(os.path.join(output_dir, f"{arch}_tiny.npz"),
                        recipe=np.frombuffer(synthetic.dumps(recipe), np.uint8))
    print(f"{pth}: {os.path.getsize(pth)} bytes")


def kodak_check(image_path: str, arch: str, quality: int, output_dir: str) -> None:
  _, torch, zoo = import_compressai()
  torch.manual_seed(quality)
  model = zoo.model_architectures[arch](*zoo.cfgs[arch][quality]).eval()
  os.makedirs(output_dir, exist_ok=True)
  stem = os.path.join(output_dir, f"{arch}_q{quality}_init")
  torch.save(model.state_dict(), f"{stem}.pth")
  arrays = _forward(torch, model, arch, _image(image_path))
  np.savez_compressed(f"{stem}_forward.npz", x_hat=arrays["x_hat"][0], bpp=arrays["bpp"])
  print(f"{stem}.pth; CompressAI's forward pass: {float(arrays['bpp']):.4f} bpp")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", required=True)
  parser.add_argument("--output_dir", default="tests/fixtures/compressai")
  parser.add_argument("--kodak_check", default=None, metavar="DIR")
  parser.add_argument("--architecture", default="bmshj2018-hyperprior")
  parser.add_argument("--quality", type=int, default=3)
  args = parser.parse_args()
  if args.kodak_check:
    kodak_check(args.image, args.architecture, args.quality, args.kodak_check)
  else:
    make_fixtures(args.image, args.output_dir)


if __name__ == "__main__":
  main()
