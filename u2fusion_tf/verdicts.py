"""The two rules by which every report of this project turns numbers into a verdict.

Each rule is written down once, here, and every report (``paper.md``, the ablation report, the
docs) calls it, printing the number the verdict rests on beside it.

- `compare_with_paper`: a mean we measured against a mean the paper prints. The difference of
  the means in standard errors, combined as in Welch's test, z = (ours - paper) /
  sqrt(sd_paper^2 / n_paper + sd_ours^2 / n_ours); **consistent** when |z| <= 2, else
  **differs**. Our sd is the sample sd of the pairs (n - 1); the paper's is taken as printed.
- `seed_verdict`: an effect measured once per training seed (say, how much less task 1 is
  forgotten with EWC than without). **holds** when the effect has the same sign in every seed and
  its mean exceeds twice the sd between seeds; **does not hold** when the same is true in the
  opposite direction; otherwise **not resolved at this schedule** (with one seed, always).
  A claim that an effect is absent (`null_claim_verdict`) does not hold when the effect counts
  by the same rule, and is otherwise not resolved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONSISTENT_Z = 2.0
"""|z| at or below which a measured mean is consistent with the paper's."""
SEED_SDS = 2.0
"""An effect counts when its mean over seeds exceeds this many sds between seeds."""
HOLDS, DOES_NOT_HOLD, NOT_RESOLVED = "holds", "does not hold", "not resolved at this schedule"


@dataclass(frozen=True)
class PaperComparison:
    """A measured mean against the paper's: z (Welch) and the verdict it gives."""

    z: float
    consistent: bool

    def __str__(self) -> str:
        return f"{'consistent' if self.consistent else 'differs'} (z = {self.z:+.2f})"


def compare_with_paper(
    ours: tuple[float, float, int], paper: tuple[float, float, int]
) -> PaperComparison:
    """`ours` and `paper` as (mean, sd, n); our sd is the population sd of our n values (as
    `scoring.summarize` gives it), turned into the sample sd here."""
    mean, sd, n = ours
    paper_mean, paper_sd, paper_n = paper
    sample_sd = sd * math.sqrt(n / (n - 1)) if n > 1 else 0.0
    error = math.sqrt(paper_sd**2 / paper_n + sample_sd**2 / n)
    z = (mean - paper_mean) / error if error > 0 else math.copysign(math.inf, mean - paper_mean)
    if mean == paper_mean:
        z = 0.0
    return PaperComparison(z, abs(z) <= CONSISTENT_Z * (1 + 1e-12))


def within_paper_std(ours: float, paper: tuple[float, float]) -> str:
    """The secondary, lenient reading: whether our mean lies within the paper's mean ± sd (the
    spread of single pairs, not of a mean), and by how many sds."""
    mean, sd = paper
    inside = abs(ours - mean) <= sd * (1 + 1e-9)
    return f"{'yes' if inside else 'no'} ({(ours - mean) / sd:+.2f} sd)"


@dataclass(frozen=True)
class SeedEffect:
    """An effect over seeds: its values, mean, sd (sample, n - 1) and the verdict."""

    values: tuple[float, ...]
    mean: float
    sd: float
    verdict: str

    def __str__(self) -> str:
        return f"{self.verdict} ({format_effect(self)})"


def format_effect(effect: SeedEffect, digits: int = 3) -> str:
    """'mean ± sd over n seeds'."""
    return (
        f"{effect.mean:+.{digits}g} ± {effect.sd:.{digits}g} over {len(effect.values)} "
        f"seed{'s' * (len(effect.values) != 1)}"
    )


def seed_verdict(effects: Sequence[float]) -> SeedEffect:
    """The verdict on an effect measured once per seed (positive: the claim's direction)."""
    values = tuple(float(v) for v in effects)
    array = np.array(values, float)
    if array.size == 0 or not np.isfinite(array).all():
        return SeedEffect(values, math.nan, math.nan, NOT_RESOLVED)
    mean = float(array.mean())
    sd = float(array.std(ddof=1)) if array.size > 1 else math.nan
    verdict = NOT_RESOLVED
    if array.size > 1 and abs(mean) > SEED_SDS * sd:
        if (array > 0).all():
            verdict = HOLDS
        elif (array < 0).all():
            verdict = DOES_NOT_HOLD
    return SeedEffect(values, mean, sd, verdict)


def null_claim_verdict(effects: Sequence[float]) -> SeedEffect:
    """The verdict on a claim of no effect ("differs little", "basically the same"): it **does
    not hold** when the effect counts by `seed_verdict`'s rule in either direction; otherwise
    it is **not resolved at this schedule** (seeds cannot show that an effect is absent)."""
    effect = seed_verdict(effects)
    verdict = DOES_NOT_HOLD if effect.verdict in (HOLDS, DOES_NOT_HOLD) else NOT_RESOLVED
    return SeedEffect(effect.values, effect.mean, effect.sd, verdict)
