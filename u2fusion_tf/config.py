"""Every setting of a training run in one place: `TrainConfig`, with each default and its help.

The flags of ``python -m u2fusion_tf.train`` are derived from the fields (`define_flags`) and
the config is built back from them (`config_from_flags`), so a setting is added, renamed or
given a new default here only. A per-task setting (a dict by task) becomes one flag per task,
``--<flag>_<task>`` with the task's dashes as underscores (``--epochs_multi_focus``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from absl import flags

from u2fusion_tf.catalogue import PAPER_EPOCHS, TASK_C, TASKS
from u2fusion_tf.cli import PrecisionParser
from u2fusion_tf.errors import U2FusionError
from u2fusion_tf.precision import canonical_precision

ALPHA = 20.0
"""Weight of L_mse in L_sim (Eq. 6), the paper's."""
LAMBDA = 8e4
"""Weight of the EWC term (Eq. 3), the paper's; the authors' release sets 0 (EWC off)."""
FISHER_BATCHES = 30
FISHER_BATCH_SIZE = 18
"""The Fisher information of a task (Eq. 8) from 30 batches of 18 patches, as the authors."""
MSE_WEIGHTINGS = ("paper", "authors")
"""Eq. 5's batch weighting: each patch by its own degrees (the paper), or as released."""
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
"""The `tf.distribute` strategies of training (`u2fusion_tf.distribute`)."""


def setting(
    default: Any,
    help_text: str,
    *,
    flag: str | None = None,
    choices: Sequence[str] | None = None,
    precision: bool = False,
) -> Any:
    """A `TrainConfig` field with its flag: `flag` names it when it differs from the field,
    `choices` makes it an enum, `precision` a precision word. A dict default is per task, and
    "{task}" in its help stands for the task."""
    metadata = {"help": help_text, "flag": flag, "choices": choices, "precision": precision}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the paper's and the authors' code's."""

    data_files: dict[str, str]
    run_dir: str
    task_order: Sequence[str] = setting(
        TASKS,
        "Task order (the paper: multi-modal, multi-exposure, multi-focus).",
        flag="tasks",
    )
    epochs: dict[str, int] = setting(PAPER_EPOCHS, "Epochs of the {task} task.")
    max_batches: dict[str, int] = setting(
        dict.fromkeys(TASKS, 0), "Cap on the {task} task's batches per epoch (0: all)."
    )
    c: dict[str, float] = setting(TASK_C, "Eq. 2 constant c of the {task} task.")
    batch_size: int = setting(18, "Patches per step.")
    learning_rate: float = setting(1e-4, "RMSProp learning rate.")
    rho: float = setting(0.6, "RMSProp decay of the mean square.")
    momentum: float = setting(0.15, "RMSProp momentum.")
    clip: float = setting(50.0, "Weights are clipped to [-clip, clip] after each step.")
    alpha: float = setting(ALPHA, "Weight of L_mse in L_sim (Eq. 6).")
    mse_weighting: str = setting(
        "paper",
        "Eq. 5's batch weighting: paper (each patch by its own degrees) or authors (as released: "
        "mean(w) * mean(MSE) over the batch).",
        choices=MSE_WEIGHTINGS,
    )
    ewc_lambda: float = setting(
        LAMBDA,
        "Weight of the EWC term (Eq. 7): the paper's 8e4; 0 switches EWC off (the paper's "
        "no-EWC ablation, and the authors' release, which sets LAM = 0).",
    )
    fixed_degrees: bool = setting(False, "Ablation: w1 = w2 = 0.5 instead of Eq. 2.")
    measure_online: bool = setting(False, "Run VGG16 in every step instead of the stored measure.")
    vgg_weights: str = setting(
        "imagenet",
        "VGG16 head (imagenet, .h5, none) the data was prepared with; also --measure_online's.",
    )
    vgg_seed: int = setting(0, "Seed of the untrained VGG16 head.")
    vgg_precision: str = setting("float32", "VGG16 precision for --measure_online.", precision=True)
    precision: str = setting(
        "float32", "Generator compute precision (bf16: mixed).", precision=True
    )
    fisher_batches: int = setting(FISHER_BATCHES, "Batches per task for the Fisher information.")
    fisher_batch_size: int = setting(FISHER_BATCH_SIZE, "Patches per Fisher batch.")
    fisher_after_last_task: bool = setting(
        False,
        "Measure the Fisher information after the last task too (no later task uses it; the "
        "ablation report's Fig. 19 reads it).",
    )
    validation_patches: int = setting(90, "Held-out patches per task (at most a tenth).")
    validate_every: int = setting(100, "Steps between validations (TensorBoard val/*).")
    log_every: int = setting(20, "Steps between log lines.")
    checkpoint_minutes: float = setting(5.0, "Minutes between mid-task checkpoints.")
    stop_after_tasks: int = setting(0, "Stop after this many tasks in this call (0: all).")
    seed: int = setting(
        0,
        "Seed of the initial weights, shuffling, source swaps, Fisher batches and validation "
        "split.",
    )
    deterministic: bool = setting(
        True,
        "TensorFlow op determinism: a run (and a killed run resumed) gives bit-identical weights "
        "every time; --nodeterministic lets TensorFlow pick faster nondeterministic kernels.",
    )
    strategy: str = setting(
        "auto",
        "tf.distribute strategy: auto (mirrored with several GPUs, else one_device), one_device, "
        "mirrored (every GPU of this machine), multi_worker (the machines listed in TF_CONFIG).",
        choices=STRATEGIES,
    )
    join_timeout: float = setting(
        300.0,
        "Seconds a multi_worker run waits for every worker of TF_CONFIG to join before it stops.",
    )

    def validate(self) -> None:
        """Refuses settings that cannot train, naming the flag, before any data is read or any
        step is taken; `Trainer` calls it, so the Python API gets the command line's checks."""
        if not self.task_order:
            raise U2FusionError("--tasks: name at least one task")
        unknown = [task for task in self.task_order if task not in TASKS]
        if unknown:
            raise U2FusionError(
                f"--tasks {','.join(self.task_order)}: unknown task(s) {', '.join(unknown)}; "
                f"known: {', '.join(TASKS)}"
            )
        if len(set(self.task_order)) < len(self.task_order):
            raise U2FusionError(f"--tasks {','.join(self.task_order)}: a task is named twice")
        for name, (holds, text) in RULES.items():
            field = next(field for field in _settings() if field.name == name)
            values = getattr(self, name)
            for task, flag in _flag_names(field).items():
                if task is not None and task not in self.task_order:
                    continue  # a task not trained in this run
                value = values if task is None else values.get(task)
                if value is None or not holds(value):
                    raise U2FusionError(f"--{flag} {value}: must be {text}")
        for name, allowed in (("mse_weighting", MSE_WEIGHTINGS), ("strategy", STRATEGIES)):
            if getattr(self, name) not in allowed:
                raise U2FusionError(f"--{name} {getattr(self, name)}: must be one of {allowed}")
        for name in ("precision", "vgg_precision"):
            try:
                canonical_precision(getattr(self, name))
            except ValueError as error:
                raise U2FusionError(f"--{name}: {error}") from error


AT_LEAST_ONE = (lambda value: value >= 1, "at least 1")
NOT_NEGATIVE = (lambda value: value >= 0, "at least 0")
POSITIVE = (lambda value: value > 0, "positive")  # infinity allowed: never
FINITE_POSITIVE = (lambda value: 0 < value < math.inf, "a positive number")
RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "epochs": AT_LEAST_ONE,
    "max_batches": NOT_NEGATIVE,
    "c": FINITE_POSITIVE,  # Eq. 2 divides by c
    "batch_size": AT_LEAST_ONE,
    "learning_rate": FINITE_POSITIVE,
    "rho": (lambda value: 0 <= value <= 1, "in [0, 1]"),
    "momentum": (lambda value: 0 <= value < 1, "in [0, 1)"),
    "clip": FINITE_POSITIVE,
    "alpha": (lambda value: 0 <= value < math.inf, "a number at least 0"),
    "ewc_lambda": (lambda value: 0 <= value < math.inf, "a number at least 0 (0: EWC off)"),
    "fisher_batches": AT_LEAST_ONE,
    "fisher_batch_size": AT_LEAST_ONE,
    "validation_patches": NOT_NEGATIVE,
    "validate_every": NOT_NEGATIVE,
    "log_every": AT_LEAST_ONE,
    "checkpoint_minutes": POSITIVE,
    "stop_after_tasks": NOT_NEGATIVE,
    "seed": NOT_NEGATIVE,
    "vgg_seed": NOT_NEGATIVE,
    "join_timeout": POSITIVE,
}
"""The rule of every numeric setting; a per-task setting's rule holds for each task trained."""


def flag_key(task: str) -> str:
    """The task's name in flag names: --epochs_multi_modal, --c_multi_focus, ..."""
    return task.replace("-", "_")


def _settings() -> list[dataclasses.Field]:
    """The fields that are settings (those with a flag), in their order."""
    return [field for field in dataclasses.fields(TrainConfig) if "help" in field.metadata]


def _flag_names(field: dataclasses.Field) -> dict[str | None, str]:
    """The flag name(s) of a setting: {None: name}, or {task: name} for a per-task setting."""
    name = field.metadata["flag"] or field.name
    if field.default_factory is dataclasses.MISSING:
        return {None: name}
    return {task: f"{name}_{flag_key(task)}" for task in TASKS}


def _define(name: str, default: Any, help_text: str, field: dataclasses.Field) -> None:
    if field.metadata["precision"]:
        flags.DEFINE(PrecisionParser(), name, default, help_text)
    elif field.metadata["choices"]:
        flags.DEFINE_enum(name, default, list(field.metadata["choices"]), help_text)
    elif isinstance(default, bool):
        flags.DEFINE_boolean(name, default, help_text)
    elif isinstance(default, int):
        flags.DEFINE_integer(name, default, help_text)
    elif isinstance(default, float):
        flags.DEFINE_float(name, default, help_text)
    elif isinstance(default, str):
        flags.DEFINE_string(name, default, help_text)
    else:
        flags.DEFINE_list(name, list(default), help_text)


def define_flags() -> None:
    """Defines one flag per setting (one per task for per-task settings)."""
    for field in _settings():
        if field.default_factory is dataclasses.MISSING:
            _define(_flag_names(field)[None], field.default, field.metadata["help"], field)
            continue
        defaults = field.default_factory()
        for task, name in _flag_names(field).items():
            help_text = field.metadata["help"].format(task=task)
            _define(name, defaults[task], help_text, field)


def config_from_flags(values: flags.FlagValues, **files: Any) -> TrainConfig:
    """The config the parsed flags describe; `files` gives the fields that are not settings
    (``data_files``, ``run_dir``)."""
    settings = {}
    for field in _settings():
        names = _flag_names(field)
        if None in names:
            settings[field.name] = values[names[None]].value
        else:
            settings[field.name] = {task: values[name].value for task, name in names.items()}
    return TrainConfig(**files, **settings)
