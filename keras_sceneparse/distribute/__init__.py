"""Distributed training with tf.distribute (and keras.distribution under JAX). TensorFlow-only.

    import keras_sceneparse as ksp
    model, history = ksp.distribute.fit(build_and_compile, dataset, epochs=10, strategy="auto")

See docs/distribute.md for clusters (TF_CONFIG), ``sceneparse train --workers N`` on one
machine, fault tolerance and what changes across replicas.
"""

from keras_sceneparse.distribute.batch_norm import synchronize_batch_norm
from keras_sceneparse.distribute.cluster import ClusterInfo, cluster_info, tf_config_for
from keras_sceneparse.distribute.loop import DistributedLoop, StepBackup, WorkerUnavailableError, example_losses
from keras_sceneparse.distribute.strategy import STRATEGIES, DistributionPlan, get_strategy
from keras_sceneparse.distribute.training import fit

__all__ = [
    "STRATEGIES",
    "ClusterInfo",
    "DistributedLoop",
    "DistributionPlan",
    "StepBackup",
    "WorkerUnavailableError",
    "cluster_info",
    "example_losses",
    "fit",
    "get_strategy",
    "synchronize_batch_norm",
    "tf_config_for",
]
