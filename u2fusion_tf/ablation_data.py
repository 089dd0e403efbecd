"""The ablations' results as data, and the paper's claims judged on them over seeds.

One summary per run (variant, seed), a small JSON file, holds everything the report needs: the
held-out loss curves, mu (Eq. 9) after each task, and the finished model's scores on the test
sets, pair by pair. Runs trained in different sittings or on different machines therefore report
together, and tests read numbers rather than Markdown. `claims` turns the summaries into the
paper's claims, each an effect measured once per seed and judged by `u2fusion_tf.verdicts`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from u2fusion_tf.catalogue import TASKS, evaluation_sets
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.files import sha256_of, write_atomically
from u2fusion_tf.published import TABLE5_SETS
from u2fusion_tf.runs import Run, mu_after_each_task, read_events, read_json, validation_tag
from u2fusion_tf.variants import LAMBDA_SWEEP
from u2fusion_tf.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_RESOLVED,
    SeedEffect,
    null_claim_verdict,
    seed_verdict,
)

logger = logging.getLogger(__name__)


SUMMARY_FORMAT = 1
MU_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
MU_LOG10_EDGES = tuple(np.linspace(-16.0, 2.0, 73).round(6))
"""Histogram bins of log10 mu, the same for every run so that seeds can be averaged."""
FIG22_METRICS = ("SSIM", "Qabf", "VIF", "EI", "AG")
TABLE5_METRICS = ("CC", "AG")
"""The paper's Table 5 reports CC / MG; MG is this project's AG (paper convention)."""
EWC_RUNS = ("no-ewc", "baseline")
DEGREE_RUNS = ("baseline", "fixed-degrees")
ORDER_RUNS = ("baseline", "exposure-first", "focus-first")
SCORED_VARIANTS = frozenset((*DEGREE_RUNS, *ORDER_RUNS))
"""The variants whose finished models are scored on the test sets."""
LYTRO = TABLE5_SETS["Lytro"]


# --- one run ------------------------------------------------------------------------------------


def summary_name(seed: int, variant: str) -> str:
    return f"seed{seed}-{variant}.json"


def mu_statistics(mu: np.ndarray) -> dict:
    """What the report shows of mu: its size, zeros, quantiles, max, mean and histogram."""
    positive = np.log10(mu[mu > 0])
    edges = np.array(MU_LOG10_EDGES)
    counts, _ = np.histogram(np.clip(positive, edges[0], edges[-1]), edges)
    return {
        "weights": int(mu.size),
        "zero_share": float(np.mean(mu == 0)),
        "quantiles": [float(q) for q in np.quantile(mu, MU_QUANTILES)],
        "max": float(mu.max()),
        "mean": float(mu.mean()),
        "log10_histogram": [int(c) for c in counts],
    }


def summarize_run(
    run: Run,
    variant: str,
    seed: int,
    data_root: Path,
    out_dir: Path,
    max_pairs: int = 0,
    log: Callable[[str], None] = logger.info,
    previous: dict | None = None,
) -> dict:
    """A run's summary; a finished run of `SCORED_VARIANTS` is fused and scored on the test
    sets (images in ``<out_dir>/fused/<set>/seed<k>-<variant>/``), unless the `previous`
    summary already scored the same final weights on as many pairs (a Fisher file that came
    after the last task changes mu, not the model)."""
    events = read_events(run.folder)
    validation = {}
    for task in run.task_order:
        steps, values = events.series(validation_tag(task))
        validation[task] = {"steps": steps, "values": values}
    summary = {
        "format": SUMMARY_FORMAT,
        "variant": variant,
        "seed": seed,
        "commit": run.commit,
        "command": [str(part) for part in run.provenance.get("command", [])],
        "config": run.config,
        "task_order": run.task_order,
        "tasks_done": run.tasks_done,
        "task_end_steps": events.task_end_steps(),
        "validation": validation,
        "mu": [mu_statistics(mu) for mu in mu_after_each_task(run)],
        "scores": {},
        "max_pairs": max_pairs,
    }
    if variant in SCORED_VARIANTS and run.finished:
        summary["scored_weights"] = sha256_of(run.weights(len(run.task_order)))
        previous = previous or {}
        if (
            previous.get("scores")
            and previous.get("scored_weights") == summary["scored_weights"]
            and previous.get("max_pairs") == max_pairs
        ):
            summary["scores"] = previous["scores"]
        else:
            summary["scores"] = score_run(
                run, f"seed{seed}-{variant}", data_root, out_dir, max_pairs, log
            )
    return summary


def score_run(
    run: Run,
    name: str,
    data_root: Path,
    out_dir: Path,
    max_pairs: int,
    log: Callable[[str], None],
) -> dict:
    """The finished model on every test set: standard-convention `FIG22_METRICS` everywhere,
    paper-convention `TABLE5_METRICS` on the paper's test sets; per set, the stems and each
    metric's value per pair."""
    from u2fusion_tf.scoring import fuse_set, network_fusion, score_set
    from u2fusion_tf.weights import load_model

    fusion = {name: network_fusion(load_model(run.weights(len(run.task_order))))}
    scores: dict[str, dict] = {"standard": {}, "paper": {}}
    table5_sets = set(TABLE5_SETS.values())
    for evaluation_set in evaluation_sets(data_root):
        folders, _ = fuse_set(evaluation_set, fusion, out_dir, max_pairs, log)
        conventions = [("standard", FIG22_METRICS)]
        if evaluation_set.name in table5_sets:
            conventions.append(("paper", TABLE5_METRICS))
        for convention, metrics in conventions:
            rows, _ = score_set(evaluation_set, folders, convention, metrics, log)
            scores[convention][evaluation_set.name] = {
                "stems": [row["stem"] for row in rows],
                **{metric: [float(row[metric]) for row in rows] for metric in metrics},
            }
    return scores


def write_summary(folder: Path, summary: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / summary_name(summary["seed"], summary["variant"])
    write_atomically(path, (json.dumps(summary, indent=1) + "\n").encode())
    return path


def up_to_date(summary: dict | None, run: Run, variant: str, max_pairs: int) -> bool:
    """Whether `summary` (as read from its file; None when there is none) already holds the run
    as it stands (no new task or Fisher file, scores there when they should be), so that it need
    not be read and scored again."""
    if summary is None:
        return False
    scored = variant not in SCORED_VARIANTS or not run.finished or bool(summary.get("scores"))
    fishers = sum(run.fisher(k).is_file() for k in range(1, len(run.task_order) + 1))
    return (
        summary.get("format") == SUMMARY_FORMAT
        and summary.get("tasks_done") == run.tasks_done
        and len(summary.get("mu", [])) == fishers
        and summary.get("max_pairs") == max_pairs
        and scored
    )


def read_summaries(folder: Path) -> dict[tuple[int, str], dict]:
    """Every summary in `folder`, by (seed, variant)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("seed*-*.json")):
        summary = read_json(path)
        if summary.get("format") != SUMMARY_FORMAT:
            raise U2FusionError(
                f"{path}: summary format {summary.get('format')!r}, expected {SUMMARY_FORMAT}"
            )
        found[(int(summary["seed"]), str(summary["variant"]))] = summary
    return found


# --- measures of one summary -------------------------------------------------------------------


def loss_at_task_end(summary: dict, task: str, task_number: int) -> float | None:
    """A task's held-out L_sim at the end of the run's `task_number`-th task (None before it
    was learnt or when that task has not ended)."""
    ends = summary["task_end_steps"]
    curve = summary["validation"].get(task, {"steps": [], "values": []})
    if task_number > len(ends):
        return None
    values = dict(zip(curve["steps"], curve["values"], strict=True))
    return values.get(ends[task_number - 1])


def own_task_number(summary: dict, task: str) -> int:
    return summary["task_order"].index(task) + 1


def first_loss_in_own_task(summary: dict, task: str) -> float | None:
    """A task's held-out L_sim at its first validation while it is trained."""
    number = own_task_number(summary, task)
    ends = summary["task_end_steps"]
    start = ends[number - 2] if number > 1 and len(ends) >= number - 1 else 0
    curve = summary["validation"].get(task, {"steps": [], "values": []})
    during = [v for s, v in zip(curve["steps"], curve["values"], strict=True) if s > start]
    return during[0] if during else None


def forgetting(summary: dict, task: str, after_task: int) -> float | None:
    """How much a task's held-out L_sim rose from the end of its own task to the end of task
    `after_task`, relative (0.1: 10% higher, i.e. worse)."""
    own = loss_at_task_end(summary, task, own_task_number(summary, task))
    later = loss_at_task_end(summary, task, after_task)
    return None if own is None or later is None else later / own - 1


def mu_quantile(summary: dict, after_task: int, q: float) -> float | None:
    if after_task > len(summary["mu"]):
        return None
    return summary["mu"][after_task - 1]["quantiles"][MU_QUANTILES.index(q)]


def mean_score(summary: dict, convention: str, set_name: str, metric: str) -> float | None:
    scores = summary["scores"].get(convention, {}).get(set_name)
    if not scores:
        return None
    values = np.array(scores[metric], float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


# --- over seeds ---------------------------------------------------------------------------------


def seeds(summaries: dict[tuple[int, str], dict]) -> list[int]:
    return sorted({seed for seed, _ in summaries})


def finished_runs(summaries: dict[tuple[int, str], dict], variant: str) -> list[dict]:
    """The summaries of `variant` whose runs learnt every task, in seed order: what a figure
    or a table of whole runs may average (a run under way would cut every curve short)."""
    return [
        summary
        for (_, name), summary in sorted(summaries.items())
        if name == variant and summary["tasks_done"] == len(summary["task_order"])
    ]


def per_seed(
    summaries: dict[tuple[int, str], dict],
    variants: Sequence[str],
    measure: Callable[..., float | None],
) -> list[float]:
    """`measure(*summaries of the variants)` for every seed that has all of them and where it
    is defined, in seed order."""
    values = []
    for seed in seeds(summaries):
        found = [summaries.get((seed, variant)) for variant in variants]
        if any(summary is None for summary in found):
            continue
        value = measure(*found)
        if value is not None and math.isfinite(value):
            values.append(float(value))
    return values


def rise_without_minus_with(task: str, after: int) -> Callable[[dict, dict], float | None]:
    """For (run without EWC, run with it) of one seed: `task`'s held-out L_sim rise by the end
    of task `after` without, minus with (points of %): how much EWC spares the task."""
    return lambda off, on: _points(
        difference(forgetting(off, task, after), forgetting(on, task, after))
    )


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def relative(a: float | None, b: float | None) -> float | None:
    """a / b - 1."""
    return None if a is None or b is None or b == 0 else a / b - 1


def log_ratio(a: float | None, b: float | None) -> float | None:
    """log10(a / b), for quantities that span orders of magnitude."""
    return None if a is None or b is None or a <= 0 or b <= 0 else math.log10(a / b)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the effect that tests it (positive: the claim's direction)
    measured once per seed, and the verdict."""

    section: str
    text: str
    measure: str
    """What the effect is, in words, with its unit."""
    effect: SeedEffect
    null: bool = False
    """A claim of no effect (`null_claim_verdict`)."""


def claim(
    section: str,
    text: str,
    measure: str,
    values: Sequence[float],
    null: bool = False,
) -> Claim:
    effect = null_claim_verdict(values) if null else seed_verdict(values)
    return Claim(section, text, measure, effect, null)


def claims(summaries: dict[tuple[int, str], dict]) -> list[Claim]:
    """The paper's claims of Sec. 5 (Figs. 18, 19, 22, Table 5), each judged over seeds."""
    modal, exposure = TASKS[:2]
    found = [
        claim(
            "fig18",
            "EWC keeps task 1 (multi-modal) while task 2 is learnt",
            "task 1's held-out L_sim rise during task 2, without EWC minus with (points of %)",
            per_seed(
                summaries,
                EWC_RUNS,
                rise_without_minus_with(modal, 2),
            ),
        ),
        claim(
            "fig18",
            "EWC keeps task 1 (multi-modal) through tasks 2 and 3",
            "task 1's held-out L_sim rise by the end of task 3, without EWC minus with "
            "(points of %)",
            per_seed(
                summaries,
                EWC_RUNS,
                rise_without_minus_with(modal, 3),
            ),
        ),
        claim(
            "fig18",
            "EWC keeps task 2 (multi-exposure) while task 3 is learnt",
            "task 2's held-out L_sim rise during task 3, without EWC minus with (points of %)",
            per_seed(
                summaries,
                EWC_RUNS,
                rise_without_minus_with(exposure, 3),
            ),
        ),
        claim(
            "fig18",
            "Without EWC, task 2's loss increases evidently while task 3 is learnt",
            "task 2's held-out L_sim rise during task 3 without EWC (%)",
            per_seed(summaries, ("no-ewc",), lambda off: _points(forgetting(off, exposure, 3))),
        ),
        claim(
            "fig18",
            "With EWC, task 1's loss stays basically as when it was trained",
            "task 1's held-out L_sim rise by the end of task 3 with EWC (%)",
            per_seed(summaries, ("baseline",), lambda on: _points(forgetting(on, modal, 3))),
            null=True,
        ),
        claim(
            "fig19",
            "Without EWC, the distributions of mu after the three tasks differ little",
            "log10 of median mu after task 3 / after task 1, without EWC",
            per_seed(
                summaries,
                ("no-ewc",),
                lambda off: log_ratio(mu_quantile(off, 3, 0.5), mu_quantile(off, 1, 0.5)),
            ),
            null=True,
        ),
        claim(
            "fig19",
            "With EWC, the proportion of larger mu increases",
            "log10 of the 90th percentile of mu after task 3, with EWC / without",
            per_seed(
                summaries,
                EWC_RUNS,
                lambda off, on: log_ratio(mu_quantile(on, 3, 0.9), mu_quantile(off, 3, 0.9)),
            ),
        ),
    ]
    for set_name in focus_sets(summaries):
        for metric in ("EI", "AG"):
            found.append(
                claim(
                    "fig22",
                    f"Adaptive degrees give sharper multi-focus fusion than w1 = w2 = 0.5 "
                    f"({set_name}, {metric})",
                    f"{metric} (standard convention), adaptive / fixed - 1 (%)",
                    per_seed(
                        summaries,
                        DEGREE_RUNS,
                        lambda on, off, s=set_name, m=metric: _points(
                            relative(
                                mean_score(on, "standard", s, m), mean_score(off, "standard", s, m)
                            )
                        ),
                    ),
                )
            )
    for other in ORDER_RUNS[1:]:
        found.append(
            claim(
                "table5",
                f"The paper's order keeps a higher correlation than {other}",
                f"CC averaged over the paper's six test sets, baseline minus {other}",
                per_seed(
                    summaries,
                    ("baseline", other),
                    lambda base, alt: difference(mean_cc(base), mean_cc(alt)),
                ),
            )
        )
    found += [
        claim(
            "table5",
            "MG drops when multi-focus is learnt first (Lytro)",
            "MG on Lytro, baseline / focus-first - 1 (%)",
            per_seed(
                summaries,
                ("baseline", "focus-first"),
                lytro_mg_change,
            ),
        ),
        claim(
            "table5",
            "Exchanging the multi-modal and multi-exposure tasks has little effect on multi-focus "
            "fusion (Lytro)",
            "MG on Lytro, baseline / exposure-first - 1 (%)",
            per_seed(
                summaries,
                ("baseline", "exposure-first"),
                lytro_mg_change,
            ),
            null=True,
        ),
    ]
    return found


def _points(value: float | None) -> float | None:
    """A fraction in percent (points of %)."""
    return None if value is None else 100 * value


def lytro_mg_change(base: dict, other: dict) -> float | None:
    """MG (AG, paper convention) on the paper's Lytro pairs, `base` / `other` - 1, in %."""
    return _points(
        relative(mean_score(base, "paper", LYTRO, "AG"), mean_score(other, "paper", LYTRO, "AG"))
    )


def mean_cc(summary: dict) -> float | None:
    """CC (paper convention) averaged over the paper's test sets, when all were scored."""
    values = [mean_score(summary, "paper", name, "CC") for name in TABLE5_SETS.values()]
    return None if any(v is None for v in values) else float(np.mean(values))


def focus_sets(summaries: dict[tuple[int, str], dict]) -> list[str]:
    """The multi-focus test sets the summaries were scored on (by name)."""
    names = {
        name for summary in summaries.values() for name in summary["scores"].get("standard", {})
    }
    return sorted(name for name in names if "focus" in name or name == "mfifb")


# --- the lambda sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LambdaRow:
    """One lambda of the sweep, over seeds: task 1's forgetting by the end of task 3, how much
    less that is than without EWC (seed by seed), and task 3's own held-out L_sim at its end."""

    variant: str
    ewc_lambda: float
    forgetting: SeedEffect
    """Task 1's held-out L_sim rise by the end of task 3 (%)."""
    protection: SeedEffect
    """Task 1's rise without EWC minus with this lambda, same seed (points of %); none for 0."""
    task3_loss: SeedEffect

    @property
    def still_forgets_task_1(self) -> str:
        """Whether task 1's rise counts by the seed rule: "yes", "no" (it fell), else "not
        resolved" (seeds cannot show that a rise is absent); "n/a" when not trained."""
        return _answer(self.forgetting)

    @property
    def protects_task_1(self) -> str:
        """Whether task 1 rises less than without EWC by the seed rule: "yes", "no" (it rises
        more), else "not resolved"; "n/a" for lambda = 0 itself and when not trained."""
        return _answer(self.protection)


def _answer(effect: SeedEffect) -> str:
    if not effect.values:
        return "n/a"
    return {HOLDS: "yes", DOES_NOT_HOLD: "no"}.get(effect.verdict, NOT_RESOLVED)


def lambda_sweep(summaries: dict[tuple[int, str], dict]) -> list[LambdaRow]:
    modal, focus = TASKS[0], TASKS[-1]
    without = next(variant for variant, ewc_lambda in LAMBDA_SWEEP.items() if ewc_lambda == 0)
    rows = []
    for variant, ewc_lambda in LAMBDA_SWEEP.items():
        rise = per_seed(summaries, (variant,), lambda s: _points(forgetting(s, modal, 3)))
        less = per_seed(
            summaries,
            (without, variant),
            rise_without_minus_with(modal, 3),
        )
        own = per_seed(summaries, (variant,), lambda s: loss_at_task_end(s, focus, 3))
        rows.append(
            LambdaRow(
                variant,
                ewc_lambda,
                seed_verdict(rise),
                seed_verdict(less if ewc_lambda > 0 else []),
                seed_verdict(own),
            )
        )
    return rows


def smallest_lambda_protecting_task_1(rows: Sequence[LambdaRow]) -> LambdaRow | None:
    """The smallest lambda of the sweep under which task 1 rises less than without EWC by the
    seed rule, or None."""
    protecting = [row for row in rows if row.protects_task_1 == "yes"]
    return min(protecting, key=lambda row: row.ewc_lambda) if protecting else None
