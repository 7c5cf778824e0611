"""Every stage's presets reached one way, and --set: typed values, one-line errors naming the
field, no TensorFlow needed to check them."""

import dataclasses
import subprocess
import sys

import pytest

from tfcdi import configs

REPO_ROOT = __file__.rsplit("/tests/", 1)[0]


@pytest.mark.parametrize("stage", sorted(configs.PRESETS))
def test_every_stage_has_frozen_typed_presets_with_a_tiny_or_smoke_one(stage):
  presets = configs.stage_presets(stage)
  assert {"tiny", "smoke"} & set(presets) and "paper" in presets
  for name, preset in presets.items():
    assert dataclasses.is_dataclass(preset) and configs.get_config(stage, name) == preset
    with pytest.raises(dataclasses.FrozenInstanceError):
      setattr(preset, dataclasses.fields(preset)[0].name, None)
  assert set(configs.field_types(stage)) == {f.name for f in dataclasses.fields(preset)}


def test_the_training_modules_presets_are_the_configs_ones():
  from tfcdi.train import classifier  # pylint: disable=g-import-not-at-top  (TensorFlow)
  from tfcdi.train import segmenter  # pylint: disable=g-import-not-at-top
  assert classifier.PRESETS is configs.PRESETS["classifier"]
  assert classifier.get_config("cpu", epochs=2) == configs.get_config("classifier", "cpu",
                                                                      epochs=2)
  with pytest.raises(classifier.TrainingError, match="unknown classifier preset 'huge'"):
    classifier.get_config("huge")
  with pytest.raises(ValueError, match="crop must be a positive multiple of 8"):
    segmenter.get_config("tiny", crop=30)


def test_settings_are_parsed_by_their_fields_type():
  parsed = configs.parse_settings("classifier", [
      "epochs=3", "lr_drop_epochs=1,2", "width_multiplier=1/16", "cache_latents=false",
      "precision=mixed_bfloat16", "epochs=4"], "cpu")
  assert parsed == {"epochs": 4, "lr_drop_epochs": (1, 2), "width_multiplier": 0.0625,
                    "cache_latents": False, "precision": "mixed_bfloat16"}
  assert configs.parse_settings("codec", ["learning_rate=none", "filters=16,32"]) == {
      "learning_rate": None, "filters": (16, 32)}
  assert configs.parse_settings("reproduce", ['benchmark={"repeats": 2}', "jp2_psnrs=20,30.5"],
                                "smoke") == {"benchmark": {"repeats": 2}, "jp2_psnrs": (20.0, 30.5)}
  # Pairs: the width study's (width, seeds), whose element types are their own.
  assert configs.parse_settings("reproduce", ["width_study=1/4:2,0.5:1", "seeds=2"], "smoke") == {
      "width_study": ((0.25, 2), (0.5, 1)), "seeds": 2}
  config = configs.get_config("classifier", "cpu", **parsed, seed=None)
  assert config.lr_drop_epochs == (1, 2) and config.seed == 0  # None: not given


@pytest.mark.parametrize("settings, message", [
    (["epoch=3"], "classifier configs have no field 'epoch'"),
    (["epochs=three"], "classifier config field epochs: 'three' is not an int"),
    (["learning_rate=fast"], "field learning_rate: 'fast' is not a float"),
    (["cache_latents=maybe"], "field cache_latents: 'maybe' is not true or false"),
    (["lr_drop_epochs=2,x"], "field lr_drop_epochs: '2,x' is not a comma-separated list"),
    (["epochs"], "--set=epochs: give FIELD=VALUE"),
    (["precision=fp8"], "field precision: 'fp8' is not one of auto, float32, mixed_bfloat16"),
])
def test_a_bad_setting_is_one_line_naming_the_field(settings, message):
  with pytest.raises(configs.ConfigError) as error:
    configs.get_config("classifier", "cpu", **configs.parse_settings("classifier", settings))
  assert message in str(error.value) and "\n" not in str(error.value)


def test_a_segmenter_config_its_stage_refuses_is_an_error():
  with pytest.raises(configs.ConfigError, match="crop must be a positive multiple of 8"):
    configs.get_config("segmenter", "cpu", crop=100)
  with pytest.raises(configs.ConfigError, match="unknown config stage 'decoder'"):
    configs.get_config("decoder", "cpu")


def test_the_binaries_take_set_and_refuse_a_field_given_twice():
  from experiments import _cli  # pylint: disable=g-import-not-at-top
  config = _cli.config_from_flags("joint", "tiny", ["epochs=1", "gamma=0.01"], seed=None)
  assert (config.epochs, config.gamma) == (1, 0.01)
  with pytest.raises(configs.ConfigError, match="--seed and --set=seed=... are both given"):
    _cli.config_from_flags("classifier", "tiny", ["seed=1"], seed=2)


def test_a_bad_set_is_refused_before_tensorflow_loads():
  code = ("import sys\n"
          "from absl import flags\n"
          "from experiments import train_classifier\n"
          "argv = flags.FLAGS(['x', '--net=cresnet39', '--input=latent', '--workdir=/nonexistent',"
          " '--set=epochs=three'])\n"
          "status = train_classifier.main(argv)\n"
          "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
          "print(status, len(heavy))\n")
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=300, check=True)
  assert done.stdout.split() == ["1", "0"]
  assert done.stderr.strip() == ("error: classifier config field epochs: 'three' is not an int")


def test_the_pipeline_binary_takes_set_for_its_preset(tmp_path):
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from experiments import reproduce  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver(), pytest.raises(
      app.UsageError, match="reproduce config field kodak_images: 'all' is not an int"):
    reproduce.main(flags.FLAGS(["reproduce", f"--data_root={tmp_path}",
                                f"--workdir={tmp_path / 'w'}", "--set=kodak_images=all"]))
