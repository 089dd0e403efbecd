"""Packaging for u2fusion_tf: `pip install -e .` (add `[test]` for the test tools, `[plots]` for
the figures of the ablation report)."""

from pathlib import Path

from setuptools import find_packages, setup

# u2fusion-<command> runs `python -m u2fusion_tf.<command>` (same flags); see console.py
COMMANDS = [
    f"u2fusion-{command}"
    for command in ("fuse", "train", "evaluate", "data", "datasets", "export", "weights", "results")
]

setup(
    name="u2fusion_tf",
    version="0.1.0",
    description=(
        "U2Fusion (Xu et al., TPAMI) unified unsupervised image fusion in TensorFlow 2 / Keras 3"
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["u2fusion_tf", "u2fusion_tf.*"]),
    # the shipped model travels inside the package, so every install fuses offline
    package_data={"u2fusion_tf": ["splits.json", "MANIFEST.tsv", "u2fusion.weights.h5"]},
    entry_points={"console_scripts": [f"{name}=u2fusion_tf.console:main" for name in COMMANDS]},
    install_requires=[
        "tensorflow>=2.16",
        "tensorboard",
        "numpy",
        "opencv-python-headless",
        "h5py",
        "absl-py",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "ruff", "scikit-image", "matplotlib"],
        "plots": ["matplotlib"],
    },
)
