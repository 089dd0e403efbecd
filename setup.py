"""Packaging for u2fusion_tf: `pip install -e .` (add `[test]` for the test tools, `[plots]` for
the figures of the ablation report)."""

from pathlib import Path

from setuptools import find_packages, setup

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
    package_data={"u2fusion_tf": ["splits.json", "MANIFEST.tsv"]},
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
