"""Reads PyTorch checkpoints (state dicts) into NumPy arrays, without torch.

`torch.save` (since PyTorch 1.6) writes a zip archive: `<root>/data.pkl`, a pickle of the saved
object in which every tensor is a call to a torch "rebuild" function on a storage, and
`<root>/data/<key>`, the raw bytes of each storage (little-endian unless `<root>/byteorder` says
otherwise). Unpickling runs whatever callables the pickle names, so a checkpoint must never be
read with a plain `pickle.load`: a forged file could run any code. The reader here resolves only
a short allow-list (the rebuild functions, the storage types, OrderedDict) and builds each tensor
itself, as a NumPy view of its storage with the recorded offset, size and stride; anything else
the pickle asks for is refused with a one-line error.

Also read: `.npz` files of named arrays (a state dict converted elsewhere). Not read: the
pre-1.6 ("legacy") torch format and TorchScript archives; re-saving with a current torch
(`torch.save(torch.load(old), new)`) converts them.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np


class CheckpointError(ValueError):
  """A checkpoint is unreadable, or holds something other than named tensors."""


# torch's storage types -> the dtype of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
# bfloat16 has no NumPy dtype; its tensors become float32 (exact: bfloat16 is float32's top half).
_BFLOAT16 = "BFloat16Storage"


class _StorageType:
  """What the pickle's reference to a torch storage class resolves to: only its element type."""

  def __init__(self, name: str):
    self.name = name


class _Tensor:
  """A rebuilt tensor, before the state dict is flattened: its array (float32 for bfloat16)."""

  def __init__(self, array: np.ndarray):
    self.array = array


def _rebuild_tensor(storage, offset, size, stride, *unused):
  array, itemsize = storage
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
  if offset < 0 or any(s < 0 for s in stride) or needed > array.size:
    raise CheckpointError(f"a tensor of size {size} and stride {stride} at offset {offset} does "
                          f"not fit its storage of {array.size} elements")
  view = np.lib.stride_tricks.as_strided(array[offset:], shape=size,
                                         strides=[s * itemsize for s in stride], writeable=False)
  return _Tensor(np.array(view))


def _rebuild_parameter(data, *unused):
  return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  """Resolves only the allow-list; storages come from the archive's data/ folder."""

  def __init__(self, file, archive: zipfile.ZipFile, root: str, byteorder: str):
    super().__init__(file)
    self._archive, self._root, self._byteorder = archive, root, byteorder

  def find_class(self, module, name):
    if module == "torch" and (name in _STORAGE_DTYPES or name == _BFLOAT16):
      return _StorageType(name)
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    raise CheckpointError(f"the checkpoint's pickle names {module}.{name}, which a state dict "
                          "of tensors never needs; refusing to read it")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)):
      raise CheckpointError(f"unsupported storage reference in the checkpoint: {pid!r:.80}")
    storage_type, key = pid[1], str(pid[2])
    try:
      raw = self._archive.read(f"{self._root}/data/{key}")
    except KeyError:
      raise CheckpointError(f"the checkpoint lacks the storage data/{key}") from None
    if storage_type.name == _BFLOAT16:
      halves = np.frombuffer(raw, np.dtype("u2").newbyteorder(self._byteorder))
      return (halves.astype(np.uint32) << 16).view(np.float32), 4
    dtype = np.dtype(_STORAGE_DTYPES[storage_type.name]).newbyteorder(self._byteorder)
    if len(raw) % dtype.itemsize:
      raise CheckpointError(f"storage data/{key} is not a whole number of {dtype} elements")
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")), dtype.itemsize


def _flatten(obj, prefix="") -> dict:
  """A nested dict of tensors -> {dotted name: array}; anything that is not a tensor, dropped."""
  out = {}
  for key, value in obj.items():
    name = f"{prefix}{key}"
    if isinstance(value, _Tensor):
      out[name] = value.array
    elif isinstance(value, dict):
      out.update(_flatten(value, f"{name}."))
  return out


def _read_zip(path: str) -> dict:
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise CheckpointError(f"{path} is a zip archive but not a torch.save checkpoint (no "
                            "<name>/data.pkl)")
    root = pickles[0].split("/")[0]
    byteorder = "<"
    if f"{root}/byteorder" in archive.namelist():
      byteorder = "<" if archive.read(f"{root}/byteorder").strip() == b"little" else ">"
    try:
      obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), archive, root, byteorder).load()
    except CheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any malformed pickle)
      raise CheckpointError(f"{path}: unreadable checkpoint pickle ({type(e).__name__}: "
                            f"{e})") from None
  if isinstance(obj, _Tensor) or not isinstance(obj, dict):
    raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
  return obj


def _state_dict_of(obj: dict) -> dict:
  """The tensors of a saved object: a state dict, or a dict holding one under "state_dict" or
  "model" (training checkpoints); "module." prefixes (nn.DataParallel) are dropped."""
  for key in ("state_dict", "model"):
    if isinstance(obj.get(key), dict):
      obj = obj[key]
      break
  arrays = _flatten(obj)
  if arrays and all(k.startswith("module.") for k in arrays):
    arrays = {k[len("module."):]: v for k, v in arrays.items()}
  return arrays


def load_state_dict(path: str) -> dict:
  """{name: np.ndarray} of a torch.save'd state dict (or an .npz of named arrays).

  Raises:
    CheckpointError: missing or unreadable file, a format this reader does not take, or a file
      that holds no tensors.
  """
  try:
    with open(path, "rb") as f:
      head = f.read(4)
  except OSError as e:
    raise CheckpointError(f"cannot read checkpoint {path} ({e.strerror or e})") from None
  if head.startswith(b"PK"):  # zip: torch.save's format, or numpy's .npz
    try:
      if path.endswith(".npz") or not _is_torch_zip(path):
        with np.load(path, allow_pickle=False) as npz:
          arrays = {k: np.asarray(npz[k]) for k in npz.files}
      else:
        arrays = _state_dict_of(_read_zip(path))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
      if isinstance(e, CheckpointError):
        raise
      raise CheckpointError(f"{path}: damaged checkpoint archive ({e})") from None
  elif head[:1] == b"\x80":
    raise CheckpointError(f"{path} is in torch's pre-1.6 (legacy) format, which this reader does "
                          "not take; re-save it with a current torch: "
                          "torch.save(torch.load(OLD), NEW)")
  else:
    raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save zip) or an .npz")
  if not arrays:
    raise CheckpointError(f"{path} holds no tensors")
  return arrays


def _is_torch_zip(path: str) -> bool:
  with zipfile.ZipFile(path) as archive:
    return any(n.endswith("/data.pkl") for n in archive.namelist())
