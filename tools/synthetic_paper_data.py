r"""Small synthetic datasets in the exact on-disk layouts the paper preset reads.

  python -m tools.synthetic_paper_data --output=runs/paper_data
  tfcdi-reproduce --preset=paper --data_root=runs/paper_data --workdir=runs/paper_dry \
      --max_steps=1

ImageNet and PASCAL VOC cannot be shipped or downloaded here, yet `--preset=paper` must be
known to run before a user spends GPU-days on it. This writes, under --output, what its steps
read (tfcdi/reproduce.py DATASETS), as the real datasets are laid out:

  imagenet/train/<wnid>/<wnid>_<n>.JPEG        ILSVRC2012 in class folders (real wnids)
  imagenet/val/<wnid>/ILSVRC2012_val_<n>.JPEG  the validation set sorted into class folders
  kodak/kodim<NN>.png                          768 x 512 PNGs, as Kodak's
  VOCdevkit/VOC2012/JPEGImages/<id>.jpg        VOC 2012 as distributed ...
  VOCdevkit/VOC2012/SegmentationClass/<id>.png   palette PNGs, 255 = void on object borders
  VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
  VOCdevkit/VOC2012/SegmentationClassAug/<id>.png  ... with SBD, as DeepLab's scripts convert
  VOCdevkit/VOC2012/ImageSets/SegmentationAug/train_aug.txt   it (grey index PNGs, no void)

The images are not noise: each class has its own colours and shapes (an ImageNet class a hue and
a kind of blob; a VOC mask objects of its classes on background), so the nets have something to
fit, and JPEG sizes are those of photographs' rather than of noise. Seeded: the same flags write
the same files. The counts default to the fewest that every paper-preset step accepts (a
classifier batch of 64, a segmenter batch of 10).
"""

import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from tfcdi.data import imagenet_classes
from tfcdi.data import segmentation

# allow_override: the test process also imports experiments.import_codec, which has an --output.
_OUTPUT = flags.DEFINE_string("output", None, "Folder to write the datasets into (a data_root).",
                              allow_override=True)
_CLASSES = flags.DEFINE_integer("classes", 8, "ImageNet classes (real wnids; at most 10).")
_TRAIN = flags.DEFINE_integer("train_per_class", 9, "ImageNet training images per class.")
_VAL = flags.DEFINE_integer("val_per_class", 2, "ImageNet validation images per class.")
_KODAK = flags.DEFINE_integer("kodak", 2, "Kodak-sized PNGs.")
_VOC_TRAIN = flags.DEFINE_integer("voc_train", 12, "VOC train_aug (and train) images.")
_VOC_VAL = flags.DEFINE_integer("voc_val", 4, "VOC val images.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every image.")


def _photo(rng, height: int, width: int, hue: np.ndarray, blobs: int) -> np.ndarray:
  """uint8 [H, W, 3]: a smooth two-colour gradient with soft blobs and a little grain."""
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  angle = rng.uniform(0, np.pi)
  t = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
  other = rng.uniform(0, 255, 3)
  image = t[..., None] * hue + (1 - t[..., None]) * other
  for _ in range(blobs):
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    radius = rng.uniform(0.05, 0.25) * min(height, width)
    weight = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius ** 2))[..., None]
    image = image * (1 - weight) + weight * rng.uniform(0, 255, 3)
  image += rng.normal(0, 4, image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def write_imagenet(root: str, rng, classes: int, train: int, val: int) -> list[str]:
  wnids = sorted(imagenet_classes.IMAGENETTE)[:classes]
  hues = rng.uniform(0, 255, (len(wnids), 3))
  number = 0
  for split, count in (("train", train), ("val", val)):
    for label, wnid in enumerate(wnids):
      folder = os.path.join(root, split, wnid)
      os.makedirs(folder, exist_ok=True)
      for i in range(count):
        number += 1
        # ImageNet's photos are mostly 4:3 or 3:4 around 500 x 375; smaller keeps this quick.
        height, width = (int(rng.integers(240, 400)), int(rng.integers(240, 400)))
        name = (f"{wnid}_{i + 1}.JPEG" if split == "train" else
                f"ILSVRC2012_val_{number:08d}.JPEG")
        Image.fromarray(_photo(rng, height, width, hues[label], 2 + label % 4)).save(
            os.path.join(folder, name), quality=90)
  return wnids


def write_kodak(root: str, rng, count: int) -> None:
  os.makedirs(root, exist_ok=True)
  for i in range(count):
    Image.fromarray(_photo(rng, 512, 768, rng.uniform(0, 255, 3), 6)).save(
        os.path.join(root, f"kodim{i + 1:02d}.png"))


def _scene(rng, height: int, width: int):
  """(image uint8 [H, W, 3], class indices uint8 [H, W]): objects of VOC classes on background."""
  image = _photo(rng, height, width, rng.uniform(0, 255, 3), 0)
  label = Image.new("L", (width, height), 0)
  draw_label = ImageDraw.Draw(label)
  picture = Image.fromarray(image)
  draw_image = ImageDraw.Draw(picture)
  for _ in range(int(rng.integers(1, 4))):
    cls = int(rng.integers(1, segmentation.VOC.num_classes))
    x0, y0 = int(rng.integers(0, width * 2 // 3)), int(rng.integers(0, height * 2 // 3))
    box = (x0, y0, x0 + int(rng.integers(width // 6, width // 3)),
           y0 + int(rng.integers(height // 6, height // 3)))
    colour = tuple(int(c) for c in segmentation.VOC.palette[cls])
    draw_image.ellipse(box, fill=colour)
    draw_label.ellipse(box, fill=cls)
  return np.asarray(picture), np.asarray(label)


def write_voc(root: str, rng, train: int, val: int) -> None:
  """VOC 2012's folders, with SBD's masks as SegmentationClassAug (DeepLab's layout)."""
  voc = os.path.join(root, "VOCdevkit", "VOC2012")
  for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug",
              os.path.join("ImageSets", "Segmentation"), os.path.join("ImageSets",
                                                                     "SegmentationAug")):
    os.makedirs(os.path.join(voc, sub), exist_ok=True)
  palette = [c for colour in segmentation.VOC.palette[:-1] for c in colour]
  palette += [0, 0, 0] * (255 - len(palette) // 3) + list(segmentation.VOC.palette[-1])
  ids = {"train": [f"2007_{i:06d}" for i in range(train)],
         "val": [f"2008_{i:06d}" for i in range(val)]}
  for names in ids.values():
    for name in names:
      height, width = int(rng.integers(330, 500)), int(rng.integers(330, 500))
      image, label = _scene(rng, height, width)
      Image.fromarray(image).save(os.path.join(voc, "JPEGImages", f"{name}.jpg"), quality=90)
      # SBD's masks have no void; VOC's own draw it (255) on the objects' borders.
      Image.fromarray(label, "L").save(os.path.join(voc, "SegmentationClassAug", f"{name}.png"))
      edges = np.zeros_like(label, bool)
      edges[1:, :] |= label[1:, :] != label[:-1, :]
      edges[:, 1:] |= label[:, 1:] != label[:, :-1]
      voc_label = Image.fromarray(np.where(edges, 255, label).astype(np.uint8), "P")
      voc_label.putpalette(palette)
      voc_label.save(os.path.join(voc, "SegmentationClass", f"{name}.png"))
  lists = {os.path.join("Segmentation", "train.txt"): ids["train"],
           os.path.join("Segmentation", "val.txt"): ids["val"],
           os.path.join("Segmentation", "trainval.txt"): ids["train"] + ids["val"],
           os.path.join("SegmentationAug", "train_aug.txt"): ids["train"]}
  for path, names in lists.items():
    with open(os.path.join(voc, "ImageSets", path), "w") as f:
      f.write("".join(f"{n}\n" for n in names))


def write_all(output: str, *, classes: int = 8, train_per_class: int = 9, val_per_class: int = 2,
              kodak: int = 2, voc_train: int = 12, voc_val: int = 4, seed: int = 0) -> None:
  """Writes imagenet/, kodak/ and VOCdevkit/ under `output` (see the module docstring)."""
  if not 1 <= classes <= len(imagenet_classes.IMAGENETTE):
    raise ValueError(f"classes must be 1 to {len(imagenet_classes.IMAGENETTE)}, got {classes}")
  rng = np.random.default_rng(seed)
  write_imagenet(os.path.join(output, "imagenet"), rng, classes, train_per_class, val_per_class)
  write_kodak(os.path.join(output, "kodak"), rng, kodak)
  write_voc(output, rng, voc_train, voc_val)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _OUTPUT.value:
    raise app.UsageError("--output is required")
  try:
    write_all(_OUTPUT.value, classes=_CLASSES.value, train_per_class=_TRAIN.value,
              val_per_class=_VAL.value, kodak=_KODAK.value, voc_train=_VOC_TRAIN.value,
              voc_val=_VOC_VAL.value, seed=_SEED.value)
  except (ValueError, OSError) as e:
    raise app.UsageError(str(e)) from None
  print(f"wrote imagenet/, kodak/ and VOCdevkit/ under {_OUTPUT.value}")


if __name__ == "__main__":
  app.run(main)
