"""Tests of the Figs. 3, 4, 9, 10 and 12 analogs: what they draw, what they leave out."""

import numpy as np
import pytest

from tfcdi import coded_images
from tfcdi.reporting import paper_figures

# Odd on purpose: neither side is a multiple of 8, so the codec pads and crops.
IMAGE_SHAPE = (21, 30, 3)


def _classification_row(op, net, input_kind, top5=None, complete=True, published=None):
  row = {"operating_point": op, "net": net, "input": input_kind,
         "published_imagenet": None if published is None else {"top1": published - 20.0,
                                                                "top5": published}}
  if top5 is not None or not complete:
    row["measured"] = {"top1": None if top5 is None else top5 - 30.0, "top5": top5,
                       "complete": complete, "epochs_done": 8 if complete else 2, "epochs": 8}
  return row


@pytest.fixture(name="classification_summary")
def fixture_classification_summary():
  rows = [_classification_row("original", "resnet50", "original", 91.5, published=89.96)]
  for op, base in (("0.0983", 78.0), ("0.330", 85.0), ("0.635", 88.0)):
    rows.append(_classification_row(op, "resnet50", "decoded", published=base + 0.5))
    rows.append(_classification_row(op, "cresnet51", "latent", published=base + 0.2))
    rows.append(_classification_row(op, "cresnet39", "latent", published=base))
  rows.append(_classification_row("0.0983", "resnet71", "decoded", published=79.28))
  rows.append(_classification_row("0.0983", "cresnet72", "latent", published=79.02))
  by_key = {(r["operating_point"], r["net"], r["input"]): r for r in rows}
  # Measured: cResNet-51 at 0.0983 and cResNet-39 at 0.330 finished; ResNet-50 on decoded RGB
  # at 0.0983 stopped after 2 of 8 epochs (no final accuracy); the rest never ran.
  by_key[("0.0983", "cresnet51", "latent")]["measured"] = {"top1": 56.6, "top5": 92.3,
                                                           "complete": True}
  by_key[("0.330", "cresnet39", "latent")]["measured"] = {"top1": 60.0, "top5": 93.0,
                                                          "complete": True}
  by_key[("0.0983", "resnet50", "decoded")]["measured"] = {"top1": None, "top5": None,
                                                           "complete": False}
  # A run with a number but not finished must not be drawn either.
  by_key[("0.635", "cresnet39", "latent")]["measured"] = {"top1": 10.0, "top5": 40.0,
                                                          "complete": False}
  return {"rows": rows, "stores": []}


def test_fig3_series_keeps_only_finished_runs_and_every_published_value(classification_summary):
  series = paper_figures.classification_series(classification_summary)
  assert series["measured"]["arms"] == {"cResNet-51 on the representation": [(0.0983, 92.3)],
                                        "cResNet-39 on the representation": [(0.330, 93.0)]}
  assert series["measured"]["reference"] == 91.5
  published = series["published"]["arms"]
  assert published["ResNet-50 on decoded RGB"] == [(0.0983, 78.5), (0.330, 85.5), (0.635, 88.5)]
  assert len(published) == 3 and series["published"]["reference"] == 89.96
  assert "ResNet-50 on decoded RGB at 0.0983 bpp" in series["missing"]
  assert "cResNet-39 on the representation at 0.635 bpp" in series["missing"]


def test_fig3_draws_measured_and_published_panels(classification_summary, tmp_path,
                                                  saved_figures):
  path = str(tmp_path / "fig3.png")
  assert paper_figures.fig3_top5_per_operating_point(classification_summary, path) == path
  assert (tmp_path / "fig3.png").stat().st_size > 0
  measured, published = saved_figures[path].axes
  assert measured.get_title() == "measured (finished runs)"
  assert published.get_title() == "published (paper, ImageNet)"
  for ax in (measured, published):
    assert ax.get_ylabel() == "top-5 accuracy [%]" and ax.get_xlabel() == "operating point [bpp]"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0983", "0.330", "0.635"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(saved_figures.series(ax))
  reference = "ResNet-50 on original RGB"
  assert saved_figures.series(measured) == {
      "cResNet-51 on the representation": ([0.0983], [92.3]),
      "cResNet-39 on the representation": ([0.330], [93.0]),
      reference: ([0, 1], [91.5, 91.5])}
  drawn = saved_figures.series(published)
  assert drawn["ResNet-50 on decoded RGB"] == ([0.0983, 0.330, 0.635], [78.5, 85.5, 88.5])
  assert drawn["cResNet-39 on the representation"][1] == [78.0, 85.0, 88.0]
  assert drawn[reference][1] == [89.96, 89.96] and len(drawn) == 4
  saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red", "tab:orange"))


def test_fig3_writes_nothing_without_a_finished_arm(classification_summary, tmp_path):
  # The original-RGB reference alone is not a Fig. 3.
  for row in classification_summary["rows"]:
    if row["input"] != "original":
      row.pop("measured", None)
  path = tmp_path / "fig3.png"
  assert paper_figures.fig3_top5_per_operating_point(classification_summary, str(path)) is None
  assert not path.exists()


def _with_curve(row, values, complete=True):
  row["measured"] = {**(row.get("measured") or {}), "complete": complete,
                     "curve": [[epoch + 1, None, value, 1000] for epoch, value in enumerate(values)]}
  return row


def test_fig3_curves_draw_every_run_and_name_the_unfinished(tmp_path, saved_figures):
  summary = {"rows": [
      _with_curve(_classification_row("0.0983", "cresnet51", "latent"), [40.0, 70.0, 90.0]),
      _with_curve(_classification_row("0.0983", "resnet50", "decoded"), [50.0], complete=False),
      _with_curve(_classification_row("original", "resnet50", "original"), [60.0, 80.0]),
      _classification_row("0.635", "cresnet39", "latent", top5=80.0)]}  # no curve: not drawn
  data = paper_figures.validation_curves(summary)
  assert data["panels"] == {"0.0983": {
      "cResNet-51 on the representation": [(1, 40.0), (2, 70.0), (3, 90.0)],
      "ResNet-50 on decoded RGB": [(1, 50.0)]}}
  assert data["reference"] == [(1, 60.0), (2, 80.0)]
  assert data["unfinished"] == ["ResNet-50 on decoded RGB at 0.0983 bpp"]
  assert paper_figures.validation_curves(summary, "top1")["panels"] == {}  # no top-1 values
  path = str(tmp_path / "curves.png")
  assert paper_figures.fig3_validation_curves(summary, path) == path
  axes = saved_figures[path].axes
  assert [ax.get_title() for ax in axes] == ["0.0983 bpp", "0.330 bpp (no run yet)",
                                             "0.635 bpp (no run yet)"]
  assert saved_figures.series(axes[0]) == {
      "ResNet-50 on decoded RGB (still training)": ([1], [50.0]),
      "cResNet-51 on the representation": ([1, 2, 3], [40.0, 70.0, 90.0]),
      "ResNet-50 on original RGB": ([1, 2], [60.0, 80.0])}
  assert all(ax.get_ylabel() == "validation top-5 accuracy [%]" for ax in axes)
  saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red"))
  assert paper_figures.fig3_validation_curves(summary, str(tmp_path / "n.png"), "top1") is None
  with pytest.raises(ValueError, match="top1 or top5"):
    paper_figures.validation_curves(summary, "miou")


def _segmentation_summary(measured: dict):
  rows = [{"operating_point": "original", "net": "resnet50-d", "input": "original",
           "published_voc_miou": 65.75,
           "measured": {"miou": 40.0, "complete": True, "steps": 10, "num_steps": 10}}]
  for op in ("0.0983", "0.330", "0.635"):
    for net, input_kind in (("resnet50-d", "decoded"), ("cresnet51-d", "latent"),
                            ("cresnet39-d", "latent")):
      row = {"operating_point": op, "net": net, "input": input_kind, "published_voc_miou": 55.0}
      if (op, net) in measured:
        miou, complete = measured[(op, net)]
        row["measured"] = {"miou": miou, "complete": complete, "steps": 10 if complete else 3,
                           "num_steps": 10}
      rows.append(row)
  return {"rows": rows, "latent_vs_decoded": []}


def test_fig4_draws_finished_segmentation_runs_only(tmp_path, saved_figures):
  summary = _segmentation_summary({("0.0983", "cresnet51-d"): (35.0, True),
                                   ("0.0983", "resnet50-d"): (33.0, True),
                                   ("0.330", "cresnet39-d"): (20.0, False)})
  series = paper_figures.segmentation_series(summary)
  assert series["measured"]["arms"] == {"ResNet-50-d on decoded RGB": [(0.0983, 33.0)],
                                        "cResNet-51-d on the representation": [(0.0983, 35.0)]}
  assert series["measured"]["reference"] == 40.0
  assert series["published"]["reference"] == 65.75
  path = str(tmp_path / "fig4.png")
  assert paper_figures.fig4_miou_per_operating_point(summary, path) == path
  assert (tmp_path / "fig4.png").stat().st_size > 0
  measured, published = saved_figures[path].axes
  assert measured.get_title() == "measured (finished runs)"
  assert published.get_title() == "published (paper, PASCAL VOC 2012 val)"
  assert saved_figures.series(measured) == {
      "ResNet-50-d on decoded RGB": ([0.0983], [33.0]),
      "cResNet-51-d on the representation": ([0.0983], [35.0]),
      "ResNet-50-d on original RGB": ([0, 1], [40.0, 40.0])}  # not the unfinished cResNet-39-d
  assert len(saved_figures.series(published)) == 4
  assert measured.get_ylabel() == "mIoU [%]"
  saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red"))


def test_fig4_writes_nothing_without_a_finished_arm(tmp_path):
  summary = _segmentation_summary({("0.330", "cresnet39-d"): (20.0, False)})
  path = tmp_path / "fig4.png"
  assert paper_figures.fig4_miou_per_operating_point(summary, str(path)) is None
  assert not path.exists()


def test_highest_entropy_channels_are_those_with_the_flattest_histograms():
  rng = np.random.default_rng(0)
  symbols = np.zeros((4, 6, 5), np.int32)  # channel 0: one symbol everywhere, 0 bits
  symbols[..., 1] = np.arange(24).reshape(4, 6) % 2  # two symbols, equally often: 1 bit
  symbols[..., 2] = np.arange(24).reshape(4, 6) % 6  # all six: log2(6) bits
  symbols[..., 3] = np.arange(24).reshape(4, 6) % 3  # three: log2(3) bits
  symbols[..., 4] = rng.permutation(np.r_[np.zeros(23), 1]).reshape(4, 6)  # almost constant
  entropies = coded_images.channel_entropies(symbols, 6)
  np.testing.assert_allclose(entropies[:4], [0.0, 1.0, np.log2(6), np.log2(3)])
  channels, top = coded_images.highest_entropy_channels(symbols, 6, k=3)
  assert list(channels) == [2, 3, 1]
  np.testing.assert_allclose(top, [np.log2(6), np.log2(3), 1.0])


def test_channel_entropies_refuse_symbols_outside_the_centers():
  with pytest.raises(ValueError, match="lie in"):
    coded_images.channel_entropies(np.full((2, 2, 3), 6, np.int32), 6)


@pytest.fixture(name="codecs", scope="module")
def fixture_codecs(tiny_codec, make_tiny_codec, tmp_path_factory):
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp("paper_figures") / "tiny_0.330.npz"
  make_tiny_codec(path, name="tiny-0.330", operating_point="0.330")
  return [tiny_codec, pretrained.load_codec(path=str(path))]


@pytest.fixture(name="image", scope="module")
def fixture_image():
  return np.random.default_rng(1).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)


def test_code_image_goes_through_real_file_bytes_at_any_size(codecs, image):
  item = coded_images.code_image(codecs[1], image)
  assert item.decoded.shape == IMAGE_SHAPE and item.decoded.dtype == np.uint8
  # ceil(21 / 8) x ceil(30 / 8) x C: the padding is coded like the rest of the image.
  assert item.symbols.shape == (3, 4, 16) == item.z_hat.shape
  np.testing.assert_array_equal(item.z_hat, item.centers[item.symbols])
  assert item.bpp == pytest.approx(8.0 * item.num_bytes / (21 * 30))
  assert item.operating_point == "0.330" and item.codec_name == "tiny-0.330"


def test_fig9_and_fig10_show_the_image_its_decodings_and_channels(codecs, image, tmp_path,
                                                                    saved_figures):
  fig9 = str(tmp_path / "fig9.png")
  fig10 = str(tmp_path / "fig10.png")
  assert coded_images.fig9_latent_channels(image, codecs, fig9) == fig9
  assert coded_images.fig10_decoded_images(image, codecs, fig10, crop=(2, 3, 16, 20)) == fig10
  assert (tmp_path / "fig9.png").stat().st_size > 0
  assert (tmp_path / "fig10.png").stat().st_size > 0
  # Fig. 9: the original, then per codec its decoding and its 4 highest-entropy channels.
  axes = saved_figures[fig9].axes
  assert len(axes) == 1 + 2 * 5
  np.testing.assert_array_equal(axes[0].images[0].get_array(), image)
  for row, codec in enumerate(codecs):
    decoded, *channels = axes[1 + 5 * row:6 + 5 * row]
    item = coded_images.code_image(codec, image)
    np.testing.assert_array_equal(decoded.images[0].get_array(), item.decoded)
    assert decoded.get_title() == f"decoded\n{item.bpp:.4f} bpp, {item.psnr:.2f} dB"
    for ax in channels:
      channel = int(ax.get_title().split("\n")[0][len("z_hat channel "):])
      np.testing.assert_array_equal(ax.images[0].get_array(), item.z_hat[..., channel])
  # Fig. 10: the original with the crop, then each codec's decoding cropped.
  axes = saved_figures[fig10].axes
  assert len(axes) == 1 + len(codecs)
  for ax, codec in zip(axes[1:], codecs):
    item = coded_images.code_image(codec, image)
    np.testing.assert_array_equal(ax.images[0].get_array(), item.decoded[2:18, 3:23])
    assert ax.get_title().startswith(f"{item.operating_point} bpp point ({item.codec_name})")
  for path in (fig9, fig10):
    saved_figures.assert_drawn(path)


def test_fig10_refuses_a_crop_outside_the_image(codecs, image, tmp_path):
  with pytest.raises(ValueError, match="outside"):
    coded_images.fig10_decoded_images(image, codecs[:1], str(tmp_path / "x.png"),
                                       crop=(10, 0, 20, 10))


def _timed(name, median):
  return {"name": name, "group": "classification",
          "per_image_seconds": {"median": median, "q1": 0.9 * median, "q3": 1.1 * median,
                                "min": 0.8 * median, "max": 1.2 * median,
                                "samples": [median]}}


def _benchmark(operating_point="0.0983"):
  # The structure of reports/benchmarks/benchmark.json; cresnet72 and resnet71 were not timed.
  return {"config": {"batch_size": 4, "repeats": 3, "width_multiplier": 1.0,
                     "operating_point": operating_point, "device": "cpu"},
          "device": {"requested": "cpu", "cpu_count": 2},
          "inputs": {"operating_point": operating_point},
          "paths": [_timed("cresnet39", 0.05), _timed("cresnet51", 0.06),
                    _timed("decoder+resnet50", 0.11), _timed("resnet50", 0.07),
                    _timed("entropy+cresnet51", 0.065)]}


@pytest.fixture(name="runtime_summary")
def fixture_runtime_summary():
  rows = [_classification_row("original", "resnet50", "original", 91.5),
          _classification_row("0.0983", "resnet50", "decoded", 90.0),
          _classification_row("0.0983", "cresnet51", "latent", 92.3),
          _classification_row("0.0983", "cresnet39", "latent", 92.7),
          _classification_row("0.0983", "resnet71", "decoded"),
          _classification_row("0.0983", "cresnet72", "latent", 93.0),  # finished, never timed
          _classification_row("0.330", "cresnet51", "latent", 95.0)]  # another point
  return {"rows": rows, "stores": []}


def test_fig12_matches_finished_arms_to_their_timed_paths(runtime_summary):
  points, reference, notes = paper_figures.runtime_points(_benchmark(), runtime_summary)
  by_net = {p["net"]: p for p in points}
  assert sorted(by_net) == ["cresnet39", "cresnet51", "resnet50"]
  assert by_net["cresnet51"]["seconds"] == 0.06 and by_net["cresnet51"]["accuracy"] == 92.3
  assert by_net["cresnet51"]["seconds_with_decoder"] is None
  assert by_net["resnet50"]["seconds"] == 0.07
  assert by_net["resnet50"]["seconds_with_decoder"] == 0.11
  assert by_net["resnet50"]["seconds_with_decoder_q3"] == pytest.approx(0.121)
  assert reference == {"net": "resnet50", "accuracy": 91.5, "seconds": 0.07,
                       "seconds_q1": pytest.approx(0.063), "seconds_q3": pytest.approx(0.077)}
  assert notes == ["cresnet72 on latent: no timed path in the benchmark; left out",
                   "no finished run, left out: resnet71 on decoded"]


def test_fig12_says_when_runtimes_were_timed_at_another_operating_point(runtime_summary):
  _, _, notes = paper_figures.runtime_points(_benchmark("0.635"), runtime_summary)
  assert any("0.635 bpp latent" in n for n in notes)


def test_fig12_draws_accuracy_against_runtime_from_the_json_file(runtime_summary, tmp_path,
                                                                  saved_figures):
  import json  # pylint: disable=g-import-not-at-top
  source = tmp_path / "benchmark.json"
  source.write_text(json.dumps(_benchmark("0.635")))
  path = str(tmp_path / "fig12.png")
  assert paper_figures.fig12_accuracy_vs_runtime(str(source), runtime_summary, path) == path
  assert (tmp_path / "fig12.png").stat().st_size > 0
  ax, = saved_figures[path].axes
  assert ax.get_title() == "top-5 accuracy against runtime, 0.0983 bpp (Fig. 12 analog)"
  assert ax.get_xlabel().startswith("runtime per image [ms]")
  # The cResNets' line in milliseconds, fastest first; the reference line at ResNet-50's 91.5.
  latent = saved_figures.series(ax)["cResNet on the representation"]
  np.testing.assert_allclose(latent[0], [50.0, 60.0])
  assert latent[1] == [92.7, 92.3]
  assert [91.5, 91.5] in [list(line.get_ydata()) for line in ax.get_lines()]
  assert {t.get_text() for t in ax.get_legend().get_texts()} == {
      "cResNet on the representation", "ResNet on decoded RGB, net only",
      "ResNet on decoded RGB, decoder + net", "resnet50 on original RGB"}
  saved_figures.assert_drawn(path, colours=("tab:red", "tab:blue"))


def test_fig12_writes_nothing_without_a_timed_finished_arm(runtime_summary, tmp_path):
  benchmark = {**_benchmark(), "paths": [_timed("resnet71", 0.09)]}
  path = tmp_path / "fig12.png"
  assert paper_figures.fig12_accuracy_vs_runtime(benchmark, runtime_summary, str(path)) is None
  assert not path.exists()


def _two_epoch_summary():
  rows = []
  for net, input_kind in (("resnet50", "decoded"), ("cresnet51", "latent"),
                          ("cresnet39", "latent")):
    # The two cResNets on exactly the same values, as a smoke run gives them.
    top5 = 50.0 if net.startswith("cresnet") else 60.0
    rows.append({"operating_point": "0.0983", "net": net, "input": input_kind,
                 "measured": {"complete": True, "top5": top5,
                              "curve": [[1, 10.0, top5 + 10, 8], [2, 12.0, top5, 8]]}})
  return {"rows": rows}


def test_validation_curves_have_whole_epoch_ticks_and_both_cresnets_visible():
  figure = paper_figures.validation_curves_figure(_two_epoch_summary())
  ax = figure.axes[0]
  low, high = ax.get_xlim()
  ticks = [t for t in ax.get_xticks() if low <= t <= high]
  assert ticks and all(float(t).is_integer() for t in ticks)
  lines = {line.get_label(): line for line in ax.get_lines()}
  c51 = lines["cResNet-51 on the representation"]
  c39 = lines["cResNet-39 on the representation"]
  # cResNet-39 is drawn over cResNet-51 in a style that lets the one below show through.
  assert c39.get_zorder() > c51.get_zorder()
  assert c39.get_markerfacecolor() == "none" and c39.get_linestyle() != c51.get_linestyle()
  assert c39.get_markersize() > c51.get_markersize()


def test_five_arms_or_runs_each_get_a_style_of_their_own():
  styles = [paper_figures.arm_style(i) for i in range(5)]
  assert len({(s["color"], s["marker"]) for s in styles}) == 5
  assert paper_figures.arm_style(5) == styles[0]


def test_fig12_labels_do_not_overlap():
  # Two decoded arms at nearly one accuracy, their decoder + net ends close in runtime: the cpu
  # run's numbers, whose labels used to print over each other.
  summary = {"rows": [_classification_row("original", "resnet50", "original", 91.54),
                      _classification_row("0.0983", "resnet50", "decoded", 89.53),
                      _classification_row("0.0983", "resnet71", "decoded", 89.58),
                      _classification_row("0.0983", "cresnet51", "latent", 92.28),
                      _classification_row("0.0983", "cresnet39", "latent", 92.68)]}
  benchmark = {**_benchmark(), "paths": [_timed("cresnet51", 0.037), _timed("cresnet39", 0.030),
                                         _timed("resnet50", 0.040), _timed("resnet71", 0.046),
                                         _timed("decoder+resnet50", 0.080),
                                         _timed("decoder+resnet71", 0.086)]}
  figure = paper_figures.runtime_figure(benchmark, summary)
  ax = figure.axes[0]
  renderer = figure.canvas.get_renderer()
  boxes = [text.get_window_extent(renderer) for text in ax.texts]
  assert len(boxes) >= 5
  for i, a in enumerate(boxes):
    for b in boxes[i + 1:]:
      assert not a.overlaps(b), (a, b)
