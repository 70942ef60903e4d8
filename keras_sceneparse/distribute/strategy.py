"""Choosing how to distribute training: by name, or from the machine and TF_CONFIG."""

import dataclasses

import keras

from keras_sceneparse.distribute.cluster import cluster_info

STRATEGIES = ("auto", "none", "mirrored", "multi-worker", "data-parallel")


@dataclasses.dataclass
class DistributionPlan:
    """How a training run is distributed.

    Attributes:
        kind: ``"none"``, ``"mirrored"`` (tf.distribute.MirroredStrategy and ``fit``),
            ``"multi-worker"`` (tf.distribute.MultiWorkerMirroredStrategy and the training
            loop of :mod:`keras_sceneparse.distribute.loop`), or ``"data-parallel"``
            (``keras.distribution.DataParallel`` under JAX, with ``fit``).
        strategy: the ``tf.distribute.Strategy`` (TensorFlow kinds), else ``None``.
        distribution: the ``keras.distribution.Distribution`` (JAX), else ``None``.
    """

    kind: str
    strategy: object = None
    distribution: object = None

    @property
    def num_replicas(self):
        if self.strategy is not None:
            return self.strategy.num_replicas_in_sync
        if self.distribution is not None:
            return len(self.distribution.device_mesh.devices.flatten())
        return 1

    def scope(self):
        """Context in which models must be built and compiled."""
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


_PLANS = {}


def get_strategy(name="auto", devices=None, collective_timeout=None):
    """The :class:`DistributionPlan` for ``name`` under the active Keras backend.

    A multi-worker strategy must exist before TensorFlow runs its first operation (its
    collectives are configured at start-up), so a multi-worker program calls this first;
    later calls with the same arguments return the same plan.

    ``"auto"`` picks ``multi-worker`` when ``TF_CONFIG`` describes several workers,
    ``mirrored`` when TensorFlow sees several GPUs, ``data-parallel`` when JAX sees several
    devices, else ``none``. ``devices`` restricts a mirrored strategy (e.g. the two logical
    CPUs of a test). ``collective_timeout`` (seconds) makes every multi-worker collective
    fail when it waits longer. It is off by default: TensorFlow's coordination service
    already notices a worker that stops sending heartbeats (about 10 s here) and aborts the
    collectives, and in TensorFlow 2.21 a collective timeout costs a thread per collective
    operation (we measured 28,000 threads within 15 s of training a MobileNetV2 DeepLab on
    two workers, and the process then aborted). Set it only for workers that may hang
    while still alive.
    """
    if isinstance(name, DistributionPlan):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; expected one of {list(STRATEGIES)}.")
    if collective_timeout is not None and collective_timeout <= 0:
        raise ValueError(f"`collective_timeout` must be a positive number of seconds or None, got {collective_timeout}.")
    key = (name, tuple(devices or ()), collective_timeout)
    if key not in _PLANS:
        _PLANS[key] = _make_plan(name, devices, collective_timeout)
    return _PLANS[key]


def _make_plan(name, devices, collective_timeout):
    backend = keras.backend.backend()
    info = cluster_info()
    if backend == "jax":
        return _jax_plan(name, devices)
    if backend != "tensorflow":
        if name not in ("auto", "none"):
            raise ValueError(f"Strategy {name!r} needs the TensorFlow or JAX backend, not {backend!r}.")
        return DistributionPlan("none")

    import tensorflow as tf

    if name == "data-parallel":
        raise ValueError("'data-parallel' is keras.distribution under JAX; under TensorFlow use 'mirrored'.")
    if name == "auto":
        if info.is_multi_worker:
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or devices:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        if info.is_multi_worker:
            raise ValueError("TF_CONFIG describes several workers but the strategy is 'none'.")
        return DistributionPlan("none")
    if name == "mirrored":
        return DistributionPlan("mirrored", _new_mirrored_strategy(tf, devices))
    if not info.is_multi_worker:
        raise ValueError(
            "Strategy 'multi-worker' needs TF_CONFIG describing at least two workers (see docs/distribute.md), "
            "or `sceneparse train --workers N` to start them on this machine."
        )
    timeout = {} if collective_timeout is None else {"timeout_seconds": float(collective_timeout)}
    options = tf.distribute.experimental.CommunicationOptions(**timeout)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "The multi-worker strategy must be created before TensorFlow runs anything (its collectives are "
            "configured at start-up): call keras_sceneparse.distribute.get_strategy() first in the program, "
            "before building data sets or setting seeds."
        ) from error
    return DistributionPlan("multi-worker", strategy)


def _jax_plan(name, devices):
    if name in ("mirrored", "multi-worker"):
        raise ValueError(f"Strategy {name!r} is tf.distribute; under JAX use 'data-parallel' (keras.distribution).")
    devices = devices or keras.distribution.list_devices()
    if name == "none" or (name == "auto" and len(devices) < 2):
        return DistributionPlan("none")
    return DistributionPlan("data-parallel", distribution=keras.distribution.DataParallel(devices=devices))


# Every MirroredStrategy numbers its collective ops (group and instance keys) from the same
# class-level base, and TensorFlow caches a collective's shapes by those keys for the life of
# the process. A second strategy in one process (a notebook, a test suite, train then
# evaluate) would reuse the first one's keys and fail with "Shape mismatch in the collective
# instance" as soon as a synchronized batch norm reduces a tensor of another shape. Each
# strategy we create therefore gets keys of its own, as TensorFlow's own tests do.
_COLLECTIVE_KEY_STRIDE = 100_000


def _new_mirrored_strategy(tf, devices):
    tf.distribute.MirroredStrategy._collective_key_base += _COLLECTIVE_KEY_STRIDE
    return tf.distribute.MirroredStrategy(devices)
