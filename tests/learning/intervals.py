"""The learning proofs' intervals: a 95 % bootstrap interval of a mean over scored clips that resamples
speakers (or identities), their clips and the training seeds, so that neither many clips of few speakers
nor one lucky seed makes an interval look narrow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
