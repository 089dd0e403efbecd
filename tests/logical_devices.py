"""Runs trainings in a process whose CPU is split into logical devices, as tf.distribute tests
need (the split must happen before TensorFlow touches a device, so not inside pytest's process).

    python tests/logical_devices.py DEVICES CONFIG.json ...

Each CONFIG.json holds the keyword arguments of one `TrainConfig`; they run in order, each to
its end from the same initial weights (Keras seeded with 0), with the log on stdout.
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf


def main(count: int, config_paths: list[str]) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )
    import keras

    from u2fusion_tf.config import TrainConfig
    from u2fusion_tf.training import Trainer

    for path in config_paths:
        with open(path) as stream:
            settings = json.load(stream)
        keras.utils.set_random_seed(0)  # the same initial weights for every run
        Trainer(TrainConfig(**settings), log=lambda line: print(line, flush=True)).run()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
