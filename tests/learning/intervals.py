"""What every fresh-data learning proof does (issue 30): train the recipe once per training seed on demo
data generated with `FRESH_DATA_SEED` (no recipe was tuned on it; its test speakers are held out of
training), score every test clip (or face) of every run, and bound each mean by a 95 % bootstrap interval
that resamples speakers (or identities), their clips and the training seeds, so that neither many clips of
few speakers nor one lucky seed makes an interval look narrow. A proof passes when each barred interval
starts at its bar and above the upper end of every control's interval."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import train as train_entry

FRESH_DATA_SEED = 1  # the recipes were tuned on seed 0's demo data
FRESH_DATA = [f"--data.init_args.demo_seed={FRESH_DATA_SEED}"]
TRAINING_SEEDS = (0, 1, 2)
BOOTSTRAP_DRAWS = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class ClipScores:
    """One scored test clip of one training run: its speaker and its values by name (the lip-shape
    measure's `lip_*`, or an identity proof's retrieval hits)."""

    seed: int
    speaker: str
    clip: int
    values: dict[str, float]


def bootstrap_interval(scores: list[ClipScores], key: str, rng_seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of `key` over the clips, the interval at `LEVEL` from `BOOTSTRAP_DRAWS` draws that
    each resample the speakers, then each drawn speaker's clips, then the training seeds (a clip's value is
    its mean over the drawn seeds). A clip without the value is left out."""
    table: dict[str, dict[int, dict[int, float]]] = {}
    for s in scores:
        if key in s.values:
            table.setdefault(s.speaker, {}).setdefault(s.clip, {})[s.seed] = s.values[key]
    if not table:
        raise KeyError(f"no clip has {key}")
    seeds = sorted({s.seed for s in scores})
    rng, speakers, means = np.random.default_rng(rng_seed), sorted(table), []
    for _ in range(BOOTSTRAP_DRAWS):
        drawn_seeds, values = rng.choice(seeds, len(seeds)), []
        for speaker in rng.choice(speakers, len(speakers)):
            clips = sorted(table[speaker])
            for clip in rng.choice(clips, len(clips)):
                runs = table[speaker][clip]
                values.append(np.mean([runs[s] for s in drawn_seeds if s in runs] or list(runs.values())))
        means.append(np.mean(values))
    tail = (1 - LEVEL) / 2 * 100
    mean = float(np.mean([v for clips in table.values() for runs in clips.values() for v in runs.values()]))
    return mean, float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def seeded_intervals(
    experiment: str,
    overrides: list[str],
    score_run: Callable[[Path, int], list[ClipScores]],
    keys: Iterable[str],
    stop_after: str | None = None,
    seeds: tuple[int, ...] = TRAINING_SEEDS,
) -> dict[str, tuple[float, float, float]]:
    """Train `experiment` with `overrides` once per training seed (the chain ends after `stop_after` when
    given), score the run with `score_run(run_dir, seed)`, and return `{key: (mean, low, high)}` of
    `bootstrap_interval` for each of `keys`. Prints each seed's means and the intervals, which the docs and
    the README's table quote."""
    keys, scores, started = list(keys), [], time.monotonic()
    for seed in seeds:
        run_dir = train_entry.train(
            experiment, overrides=[*overrides, f"--seed_everything={seed}"], stop_after=stop_after
        )
        scored = score_run(run_dir, seed)
        means = {
            key: round(float(np.mean([c.values[key] for c in scored if key in c.values])), 3) for key in keys
        }
        print(f"[learning proof] {experiment}, seed {seed}: {means}")
        scores += scored
    intervals = {key: bootstrap_interval(scores, key) for key in keys}
    shown = {key: tuple(round(v, 3) for v in interval) for key, interval in intervals.items()}
    print(f"[learning proof] {experiment}, {time.monotonic() - started:.0f} s: {shown}")
    return intervals


def assert_above_bar_and_controls(
    intervals: dict[str, tuple[float, float, float]], bars: dict[str, float], controls: tuple[str, ...]
) -> None:
    """Each barred key's interval starts at or above its bar and above the upper end of every control's
    interval (`key + suffix` for each suffix in `controls`)."""
    for key, bar in bars.items():
        low = intervals[key][1]
        assert low >= bar, f"{key}: interval {intervals[key]} below the bar {bar}"
        ceiling = max(intervals[key + suffix][2] for suffix in controls)
        assert low > ceiling, f"{key}: interval {intervals[key]} reaches the controls' ({ceiling:.3f})"
