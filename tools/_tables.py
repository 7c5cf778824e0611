"""What the result-collecting tools (classification, segmentation, joint, hyperprior) share.

Each tool copies run results into an output folder and writes a summary as <name>.json and
<name>.md there (the benchmark tools write the same pair where --output says); the flags for where, under which heading, and against which published numbers
are the same for all of them.
"""

import glob
import os

from absl import app
from absl import flags

from tfcdi import imageio
from tfcdi.reporting import results


def define_output_flags(default_dir: str, default_title: str):
  """--output_dir, --title and --paper_numbers; returns their holders in that order."""
  return (flags.DEFINE_string("output_dir", default_dir, "Where to write."),
          flags.DEFINE_string("title", default_title, "Heading of the Markdown file."),
          flags.DEFINE_string("paper_numbers", None,
                              "The reference numbers (default: ../shared/reference)."))


def write_summary(output_dir: str, name: str, summary: dict, markdown: str) -> None:
  """<output_dir>/<name>.json and <name>.md, and the Markdown on stdout."""
  write_beside(os.path.join(output_dir, f"{name}.json"), summary, markdown)


def write_beside(json_path: str, summary: dict, markdown: str) -> None:
  """The JSON at `json_path`, the Markdown beside it (.md), and the Markdown on stdout."""
  imageio.write_json(json_path, summary)
  with open(os.path.splitext(json_path)[0] + ".md", "w") as f:
    f.write(markdown)
  print(markdown)


def collect_runs(runs_dir, what: str, output_dir: str, name_of, keep=lambda path: True) -> list:
  """Copies each finished run under runs_dir into <output_dir>/runs/ as <name_of(result)>.json.

  Returns the copies beside those collected before (from other runs folders, e.g. further seeds
  run on another machine), which stay part of their arms; keep filters the earlier ones.
  """
  if not runs_dir or not os.path.isdir(runs_dir):
    raise app.UsageError(f"--runs must be a folder of {what} workdirs, got {runs_dir!r}")
  runs_out = os.path.join(output_dir, "runs")
  copies = results.collect_results(runs_dir, runs_out, name_of)
  return sorted(set(copies) | {p for p in glob.glob(os.path.join(runs_out, "*.json")) if keep(p)})
