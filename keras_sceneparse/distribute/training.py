"""One call to train on a laptop, several GPUs or a cluster: :func:`fit`."""

import keras

from keras_sceneparse.distribute.batch_norm import synchronize_batch_norm
from keras_sceneparse.distribute.loop import DistributedLoop
from keras_sceneparse.distribute.strategy import get_strategy


def fit(
    model_fn,
    train_data,
    *,
    epochs,
    validation_data=None,
    steps_per_epoch=None,
    strategy="auto",
    devices=None,
    callbacks=None,
    verbose=1,
    backup_dir=None,
    backup_frequency="epoch",
    sync_batch_norm=True,
    collective_timeout=None,
):
    """Builds a model under the right strategy and trains it; returns ``(model, history)``.

    The same call trains on one device, on the GPUs of one machine
    (``tf.distribute.MirroredStrategy`` with ``model.fit``), on a cluster of workers
    described by ``TF_CONFIG`` (``MultiWorkerMirroredStrategy`` with
    :class:`~keras_sceneparse.distribute.loop.DistributedLoop`, since Keras 3's ``fit``
    fails there), and on several JAX devices (``keras.distribution.DataParallel`` with
    ``model.fit``).

    Args:
        model_fn: a function without arguments that builds and compiles the model; it is
            called in the strategy's scope, as tf.distribute requires.
        train_data: a ``tf.data.Dataset`` of *global* batches, or a function
            ``epoch -> tf.data.Dataset`` giving each epoch's batches (so the order of an
            epoch depends only on its number: every path trains on the same batches, and the
            multi-worker loop resumes a backed-up epoch exactly). For ``fit`` the epochs are
            concatenated, which needs the epoch length: ``steps_per_epoch`` or a data set of
            known cardinality.
        epochs, validation_data, steps_per_epoch, callbacks, verbose: as for ``model.fit``.
        strategy: ``"auto"``, ``"none"``, ``"mirrored"``, ``"multi-worker"`` or
            ``"data-parallel"`` (see :func:`~keras_sceneparse.distribute.get_strategy`).
        devices: devices of a mirrored or data-parallel strategy (default: all).
        backup_dir: restart checkpoints: ``keras.callbacks.BackupAndRestore`` (per epoch) on
            ``fit`` paths; per ``backup_frequency`` steps in the multi-worker loop. Must be on
            storage every worker sees.
        sync_batch_norm: synchronise batch normalisation across replicas when there are
            several (TensorFlow), so statistics are those of the global batch.
        collective_timeout: seconds a multi-worker collective may wait (default: none; see
            :func:`get_strategy`).
    """
    plan = get_strategy(strategy, devices=devices, collective_timeout=collective_timeout)
    callbacks = list(callbacks or [])
    if plan.kind == "data-parallel":
        keras.distribution.set_distribution(plan.distribution)
    with plan.scope():
        model = model_fn()
        if not isinstance(model, keras.Model) or not model.compiled:
            raise ValueError("`model_fn` must return a compiled keras.Model.")
        if sync_batch_norm and plan.num_replicas > 1:
            synchronize_batch_norm(model)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    if plan.kind == "multi-worker":
        loop = DistributedLoop(model, plan.strategy, backup_dir=backup_dir, backup_frequency=backup_frequency)
        history = loop.fit(train_data, epochs, steps_per_epoch=steps_per_epoch, validation_data=validation_data,
                           callbacks=callbacks, verbose=verbose)
        return model, history
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
    data, steps_per_epoch = _epochs_of(train_data, epochs, steps_per_epoch)
    validation = validation_data(0) if callable(validation_data) else validation_data
    # A tf.data pipeline shuffles itself (Keras warns that it ignores shuffle=True for one).
    shuffle = not _is_tf_dataset(data)
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=validation,
                        callbacks=callbacks, verbose=verbose, shuffle=shuffle)
    return model, history


def _is_tf_dataset(data):
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _epochs_of(train_data, epochs, steps_per_epoch):
    """For ``model.fit``: one data set holding every epoch's batches, and the epoch length."""
    if not callable(train_data):
        return train_data, steps_per_epoch
    first = train_data(0)
    length = steps_per_epoch or int(first.cardinality())
    if length < 1:
        raise ValueError(
            "`train_data` is a function of the epoch but its data set has no known length: give "
            "`steps_per_epoch` (or pass a single tf.data.Dataset)."
        )
    data = first.take(length)
    for epoch in range(1, epochs):
        data = data.concatenate(train_data(epoch).take(length))
    return data, length
