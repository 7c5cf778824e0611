"""An arm's seeds as one number with its spread, and the rule that turns a gap into a verdict.

A trained arm may have been run with several --seed values (committed as
`<name>_seed<N>.json` beside the seed-0 file `<name>.json`). The tables show each arm as the
mean of its finished seeds, the range of those runs (lowest-highest) and how many there are.
A claim compares arms by the gap between their means, and SPREAD_RULE says when that gap is
larger than the noise the seeds measured. The rule is defined here once; the claims apply it
and the report prints it at the top.
"""

from __future__ import annotations

from typing import Sequence

INCONCLUSIVE = "inconclusive"

SPREAD_RULE = (
    "A claim that compares trained arms is decided on the gap between the arms' means over "
    "their seeds. The gap's seed spread is the larger of the two arms' ranges (highest run "
    "minus lowest). A check whose gap lies within that spread of the test's threshold is "
    "*inconclusive*: neither reproduced nor refuted. A verdict names the number of seeds behind "
    "it; an arm with one seed has no measured spread, so its checks are decided on that single "
    "run and the verdict says '1 seed, spread unknown'.")


def aggregate(measured: Sequence[dict], metrics: Sequence[str]) -> dict:
  """One arm's per-seed measurements -> its mean, range and number of seeds.

  Args:
    measured: one dict per seed, in seed order, each with "seed", "complete" and `metrics`.
    metrics: the keys to average (their values may be None).

  Returns:
    The first finished seed's dict with each metric replaced by the mean over the finished seeds
    (an unfinished run's last evaluation is partial, so it does not enter the mean), and
    `<metric>_range` = [lowest, highest] over them (None with fewer than two), "seeds" (all
    seeds run), "seeds_averaged" and "num_seeds" (how many entered the mean). "complete" is
    True once every seed has finished.
  """
  if not measured:
    raise ValueError("an arm needs at least one run")
  done = [m for m in measured if m.get("complete")] or list(measured[:1])
  out = dict(done[0])
  averaged = None
  for metric in metrics:
    values = [m[metric] for m in done if m.get(metric) is not None]
    out[metric] = sum(values) / len(values) if values else None
    out[f"{metric}_range"] = [min(values), max(values)] if len(values) > 1 else None
    if averaged is None and values:
      averaged = [m["seed"] for m in done if m.get(metric) is not None]
  out["complete"] = all(m.get("complete") for m in measured)
  out["seeds"] = [m["seed"] for m in measured]
  out["seeds_averaged"] = averaged or []
  out["num_seeds"] = len(out["seeds_averaged"]) or 1
  return out


def seed_range(measured: dict | None, metric: str) -> float | None:
  """Highest minus lowest seed of one arm's metric; None with one seed (no spread measured)."""
  span = (measured or {}).get(f"{metric}_range")
  return None if span is None else span[1] - span[0]


def gap_spread(*arms: dict, metric: str) -> float | None:
  """The seed spread of a gap between arms: the larger of their ranges; None if any arm has a
  single seed (a spread measured on one arm says nothing about the other's)."""
  ranges = [seed_range(arm, metric) for arm in arms]
  return None if any(r is None for r in ranges) else max(ranges)


def num_seeds(measured: dict | None) -> int:
  return int((measured or {}).get("num_seeds") or 1)


def decide(gap: float | None, threshold: float, spread: float | None, strict: bool = False):
  """One check of SPREAD_RULE: True / False, INCONCLUSIVE, or None (not measured).

  Args:
    gap: the measured gap (mean minus mean), or None.
    threshold: the test passes when gap >= threshold (gap > threshold if strict).
    spread: gap_spread() of the arms; None when it is unknown (a single seed).
  """
  if gap is None:
    return None
  if spread is not None and abs(gap - threshold) <= spread:
    return INCONCLUSIVE
  return gap > threshold if strict else gap >= threshold


def cell(measured: dict | None, metric: str, digits: int = 2) -> str | None:
  """A table cell: "mean (lowest-highest)" with several seeds, the value alone with one."""
  value = (measured or {}).get(metric)
  if value is None:
    return None
  text = f"{value:.{digits}f}"
  span = (measured or {}).get(f"{metric}_range")
  if span is not None:
    text += f" ({span[0]:.{digits}f}-{span[1]:.{digits}f})"
  return text


def seeds_text(counts: Sequence[int]) -> str:
  """The number of seeds behind a verdict: '3 seeds per arm', '1-3 seeds per arm', '1 seed,
  spread unknown' when any arm behind it has one."""
  if not counts:
    return ""
  low, high = min(counts), max(counts)
  if low == 1:
    return ("1 seed, spread unknown" if high == 1 else
            f"1-{high} seeds per arm; 1 seed: spread unknown")
  return f"{low} seeds per arm" if low == high else f"{low}-{high} seeds per arm"
