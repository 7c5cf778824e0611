"""What the result-collecting tools (classification, segmentation, joint, hyperprior) share.

Each tool copies run results into an output folder and writes a summary as <name>.json and
<name>.md there; the flags for where, under which heading, and against which published numbers
are the same for all of them.
"""

import json
import os

from absl import flags


def define_output_flags(default_dir: str, default_title: str):
  """--output_dir, --title and --paper_numbers; returns their holders in that order."""
  return (flags.DEFINE_string("output_dir", default_dir, "Where to write."),
          flags.DEFINE_string("title", default_title, "Heading of the Markdown file."),
          flags.DEFINE_string("paper_numbers", None,
                              "The reference numbers (default: ../shared/reference)."))


def write_summary(output_dir: str, name: str, summary: dict, markdown: str) -> None:
  """<output_dir>/<name>.json and <name>.md, and the Markdown on stdout."""
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, f"{name}.json"), "w") as f:
    json.dump(summary, f, indent=2)
  with open(os.path.join(output_dir, f"{name}.md"), "w") as f:
    f.write(markdown)
  print(markdown)
