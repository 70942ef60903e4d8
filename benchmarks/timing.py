"""Timing of one compiled model's training and inference steps, shared by the benchmarks."""

import statistics
import time

import keras
import numpy as np


def time_calls(function, steps):
    """Wall time of each of ``steps`` calls of ``function``."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


class StepTimer:
    """A compiled model with one random batch, timed step by step.

    ``warm_up()`` runs ``warmup`` training and prediction steps (graph tracing, XLA
    compilation); ``time(steps)`` appends the wall time of ``steps`` ``train_on_batch`` and
    ``steps`` ``predict_on_batch`` calls to :attr:`train_times` and :attr:`predict_times`,
    so several rounds interleaved with other models share the machine's load fairly.
    """

    def __init__(self, model, loss, metrics, crop, batch_size, num_classes, jit_compile=False, seed=0):
        self.model = model
        model.compile(keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics, jit_compile=jit_compile)
        rng = np.random.default_rng(seed)
        self.batch_size = batch_size
        self.images = rng.uniform(0, 255, (batch_size, *crop, 3)).astype("float32")
        # Labels include the ignored id ``num_classes``, as real data sets do.
        self.labels = rng.integers(0, num_classes + 1, (batch_size, *crop)).astype("int32")
        self.train_times, self.predict_times = [], []
        self.warmup_seconds = None

    def warm_up(self, warmup):
        start = time.perf_counter()
        for _ in range(warmup):
            self.model.train_on_batch(self.images, self.labels)
            self.model.predict_on_batch(self.images)
        self.warmup_seconds = time.perf_counter() - start

    def time(self, steps):
        self.train_times += time_calls(lambda: self.model.train_on_batch(self.images, self.labels), steps)
        self.predict_times += time_calls(lambda: self.model.predict_on_batch(self.images), steps)

    def images_per_second(self):
        """Median training and inference images/s over every timed step."""
        return (
            self.batch_size / statistics.median(self.train_times),
            self.batch_size / statistics.median(self.predict_times),
        )
