"""u2fusion_tf: U2Fusion (Xu et al., TPAMI) unified unsupervised image fusion in TensorFlow 2.

Python API: ``u2fusion_tf.load_model``, ``u2fusion_tf.fuse`` and ``u2fusion_tf.fuse_y`` (from
`u2fusion_tf.fuse`), imported on first use: ``import u2fusion_tf`` alone does not import
TensorFlow.
"""

import sys

__version__ = "0.1.0"
__all__ = ["fuse", "fuse_y", "load_model"]

if sys.argv[:1] == ["-m"]:  # imported to run `python -m u2fusion_tf.<command>`
    from u2fusion_tf.startup import begin_command

    begin_command(sys.orig_argv)


def __getattr__(name: str):
    """The API names, imported when first asked for. ``fuse`` is the `u2fusion_tf.fuse` module
    itself, which calls like its `fuse` function (Python makes a package's submodule its
    attribute, so the two could not otherwise share the name)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module("u2fusion_tf.fuse")
    return module if name == "fuse" else getattr(module, name)
