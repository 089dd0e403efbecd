"""Compute precisions: one word each, shared by the generator, the VGG16 measure, the commands
and the bench.

* ``float32``: everything in float32 (what reproduces the authors' program).
* ``bf16``: Keras mixed precision: bfloat16 computation with float32 weights, about 3.5-4x faster
  on CPUs with bf16 units. ``bfloat16`` is accepted as another spelling of it.
"""

from __future__ import annotations

PRECISIONS = {"float32": "float32", "bf16": "mixed_bfloat16"}
"""Each precision and its Keras dtype policy."""
ALIASES = {"bfloat16": "bf16"}
"""Other spellings accepted for a precision."""


def canonical_precision(name: str) -> str:
    """The precision's one word (``bfloat16`` -> ``bf16``); ValueError for an unknown name."""
    name = ALIASES.get(name, name)
    if name not in PRECISIONS:
        known = ", ".join(
            [*PRECISIONS, *(f"{alias} (= {word})" for alias, word in ALIASES.items())]
        )
        raise ValueError(f"unknown precision {name!r}; use one of {known}")
    return name


def dtype_policy(name: str) -> str:
    """The Keras dtype policy of a precision."""
    return PRECISIONS[canonical_precision(name)]


def compute_dtype(name: str) -> str:
    """The dtype a precision computes in: ``float32`` or ``bfloat16``."""
    import keras  # only here: commands that never compute start without TensorFlow

    return keras.DTypePolicy(dtype_policy(name)).compute_dtype
