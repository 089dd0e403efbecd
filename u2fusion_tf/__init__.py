"""u2fusion_tf: U2Fusion (Xu et al., TPAMI) unified unsupervised image fusion in TensorFlow 2.

Python API: `from u2fusion_tf.fuse import load_model, fuse, fuse_y`.
"""

__version__ = "0.1.0"
