"""Times CompressAI's own compress / decompress, for tools/peer_benchmark.py (its own venv).

CompressAI pins numpy<2 and needs torch, neither of which tfcdi's environment may hold, so
peer_benchmark.py starts this file with the CompressAI venv's Python (see compressai_fixtures.py
for that venv) and talks to it over stdin / stdout, one JSON line each way:

  python tools/compressai_timing.py --checkpoint=M.pth --architecture=bmshj2018-hyperprior \
      --quality=3 --threads=2 IMAGE.png ...

It loads the model and the images, codes the first image once untimed (torch's first call
allocates and picks its kernels), prints {"ready": ..., versions}, then answers each line "round"
with one timed pass over every image: {"images": {name: {"compress_s", "decompress_s", "bytes"}}}
(the first pass also writes each decoded image to --decoded_dir as <name>.png, for the caller to
compare with tfcdi's), and stops at "quit" or the end of its input. Timed: from the
uint8 image to the entropy-coded strings, and from the strings back to a uint8 image, as
CompressAI's own `compressai.utils.eval_model` codes a file (model.compress / model.decompress),
without process start-up or file I/O. Only stdlib, NumPy, Pillow, torch and compressai here.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

# Run as a script, this file's folder is on sys.path: the fixtures tool's import (pure NumPy
# before compressai) serves both.
from compressai_fixtures import import_compressai  # pylint: disable=wrong-import-order


def _send(message: dict) -> None:
  sys.stdout.write(json.dumps(message) + "\n")
  sys.stdout.flush()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", required=True)
  parser.add_argument("--architecture", default="bmshj2018-hyperprior")
  parser.add_argument("--quality", type=int, required=True)
  parser.add_argument("--threads", type=int, default=0, help="torch's intra-op threads (0: its "
                      "default)")
  parser.add_argument("--decoded_dir", required=True)
  parser.add_argument("images", nargs="+")
  args = parser.parse_args()
  compressai, torch, zoo = import_compressai()
  if args.threads:
    torch.set_num_threads(args.threads)
  model = zoo.model_architectures[args.architecture](*zoo.cfgs[args.architecture][args.quality])
  model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
  model = model.eval()
  model.update(force=True)  # the CDF tables compress / decompress code with
  images = {os.path.basename(p): np.array(Image.open(p).convert("RGB")) for p in args.images}

  def code(image):
    start = time.perf_counter()
    with torch.inference_mode():
      x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0)
      out = model.compress(x)
    middle = time.perf_counter()
    with torch.inference_mode():
      x_hat = model.decompress(out["strings"], out["shape"])["x_hat"]
      decoded = x_hat.clamp_(0, 1).mul_(255).round_().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    end = time.perf_counter()
    num_bytes = sum(len(s) for strings in out["strings"] for s in strings)
    return middle - start, end - middle, num_bytes, decoded

  code(next(iter(images.values())))
  _send({"ready": True, "threads": torch.get_num_threads(), "versions": {
      "compressai": compressai.__version__, "torch": torch.__version__,
      "numpy": np.__version__}})
  first = True
  for line in sys.stdin:
    if line.strip() != "round":
      break
    rows = {}
    for name, image in images.items():
      compress_s, decompress_s, num_bytes, decoded = code(image)
      rows[name] = {"compress_s": compress_s, "decompress_s": decompress_s, "bytes": num_bytes}
      if first:  # written outside the timing
        Image.fromarray(decoded).save(os.path.join(args.decoded_dir, name))
    first = False
    _send({"images": rows})


if __name__ == "__main__":
  main()
