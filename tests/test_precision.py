import pytest

from tfcdi.train import precision


def _cpuinfo(tmp_path, flags):
  path = tmp_path / "cpuinfo"
  path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
  return str(path)


def test_auto_picks_bfloat16_only_where_the_cpu_has_bfloat16_units(tmp_path):
  with_bf16 = _cpuinfo(tmp_path, "fpu sse avx2 avx512f avx512_bf16")
  assert precision.cpu_has_bfloat16(with_bf16)
  assert not precision.cpu_has_bfloat16(_cpuinfo(tmp_path, "fpu sse avx2 avx512f"))
  assert not precision.cpu_has_bfloat16(str(tmp_path / "missing"))
  assert precision.resolve("float32", with_bf16) == "float32"
  assert precision.resolve("mixed_bfloat16") == "mixed_bfloat16"


def test_unknown_precision_is_refused():
  with pytest.raises(ValueError, match="choose one of auto, float32, mixed_bfloat16"):
    precision.resolve("float16")
