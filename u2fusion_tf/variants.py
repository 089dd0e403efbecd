"""The paper's ablations (Sec. 5) as training variants, and where their runs live.

    baseline        the paper's recipe (three tasks, modal -> exposure -> focus, EWC)
    no-ewc          EWC off (Figs. 18-19)
    fixed-degrees   w1 = w2 = 0.5 instead of Eq. 2 (Fig. 22)
    exposure-first  exposure -> modal -> focus (Table 5)
    focus-first     focus -> modal -> exposure (Table 5)
    lambda-8e3, lambda-8e5, lambda-8e6
                    EWC's lambda a tenth, ten and a hundred times the paper's 8e4 (the baseline)

Every variant is trained once per seed, in ``<runs_dir>/seed<k>/<variant>``. EWC acts only from
the second task on, so the variants that differ from the baseline only in EWC start from the
baseline's run folder as it stood after task 1 (``seed<k>/baseline-task1``).
"""

from __future__ import annotations

import os
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "no-ewc": ["--ewc_lambda", "0"],
    "fixed-degrees": ["--fixed_degrees"],
    "exposure-first": ["--tasks", "multi-exposure,multi-modal,multi-focus"],
    "focus-first": ["--tasks", "multi-focus,multi-modal,multi-exposure"],
    "lambda-8e3": ["--ewc_lambda", "8e3"],
    "lambda-8e5": ["--ewc_lambda", "8e5"],
    "lambda-8e6": ["--ewc_lambda", "8e6"],
}
"""Each variant's training flags on top of the common ones."""
SEEDS = (0, 1, 2)
"""The seeds every variant is trained with by default."""
SHARES_FIRST_TASK = {
    variant: "baseline" for variant in ("no-ewc", "lambda-8e3", "lambda-8e5", "lambda-8e6")
}
"""Variants that start from another variant's run folder as it stood after its first task."""
LAMBDA_SWEEP = {
    "no-ewc": 0.0,
    "lambda-8e3": 8e3,
    "baseline": 8e4,
    "lambda-8e5": 8e5,
    "lambda-8e6": 8e6,
}
"""The variants of the lambda sweep and their lambda (no-ewc is lambda = 0)."""


def seed_folder(runs_dir: str | os.PathLike, seed: int) -> Path:
    """The folder of one seed's run folders."""
    return Path(runs_dir) / f"seed{seed}"


def run_folder(runs_dir: str | os.PathLike, seed: int, variant: str) -> Path:
    return seed_folder(runs_dir, seed) / variant


def first_task_folder(runs_dir: str | os.PathLike, seed: int, variant: str) -> Path:
    """Where a variant's run folder is kept as it stood after its first task."""
    return seed_folder(runs_dir, seed) / f"{variant}-task1"
