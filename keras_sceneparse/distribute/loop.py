"""A ``fit``-like training loop for ``tf.distribute`` strategies, multi-worker included.

Under Keras 3, ``model.fit`` inside ``MultiWorkerMirroredStrategy`` fails on every worker
before the first step (``ValueError: Attempt to convert a value (PerReplica...)``, raised
while Keras reduces a distributed batch to build the model symbolically; keras-team/keras
#20585). This loop trains with ``strategy.run`` instead and keeps what users expect of
``fit``: a progress bar, a ``History``, validation, ``model.stop_training``, and the
standard callbacks (``ModelCheckpoint``, ``TensorBoard``, ``EarlyStopping``, ``CSVLogger``,
...), whose files non-chief workers write to a scratch folder.

Correctness across replicas:

- the loss of a step is ``sum_i w_i l_i / sum_i w_i`` over the *global* batch: each replica
  sums its own examples and divides by the global weight (an all-reduce), and gradients are
  summed across replicas; an empty or partial replica batch at the end of an epoch counts
  exactly what it holds;
- the data set is sharded by example (``AutoShardPolicy.DATA``): every worker runs the same
  pipeline and keeps its part of each global batch, so no example is seen twice or lost,
  and the batches are those of a single process;
- metrics are updated per replica and read summed over replicas (their variables aggregate
  by ``"sum"``): the mIoU of the global confusion matrix.

Fault tolerance (``backup_dir``): the model, the optimizer and the position (epoch, step)
are checkpointed every ``backup_frequency`` steps and at the end of each epoch, by the chief
into ``backup_dir`` and by the other workers into scratch folders, as TensorFlow's
checkpointing expects. A restarted job restores the latest checkpoint and continues at the
next step of the same epoch; with a data function ``epoch -> tf.data.Dataset`` whose order
depends only on the epoch, no step is lost or repeated. A worker that stops answering makes
the others fail with :class:`WorkerUnavailableError` when TensorFlow's coordination service
misses its heartbeats (about 10 s), or after ``collective_timeout`` seconds if one is set.
"""

import copy
import os
import shutil
import tempfile

import keras

from keras_sceneparse.distribute.cluster import cluster_info
from keras_sceneparse.losses import per_example_loss

#: File-writing callbacks, and the attribute holding the path that non-chief workers redirect.
FILE_ATTRIBUTES = {
    keras.callbacks.ModelCheckpoint: "filepath",
    keras.callbacks.TensorBoard: "log_dir",
    keras.callbacks.CSVLogger: "filename",
}


class WorkerUnavailableError(RuntimeError):
    """A worker of a multi-worker job stopped answering (it crashed, was killed, or hangs)."""


def _tf():
    import tensorflow as tf

    return tf


def example_losses(model, x, y, y_pred):
    """``(B,)`` losses: the model's own ``per_example_loss`` when it has one, else its compiled loss."""
    if hasattr(model, "per_example_loss"):
        return model.per_example_loss(x, y, y_pred)
    if model.loss is None:
        raise ValueError("The model has no compiled loss: compile it with a loss before training.")
    return per_example_loss(model.loss, y, y_pred)


class StepBackup:
    """Checkpoints of the model, its optimizer and the training position, for restarts."""

    def __init__(self, model, directory, info, frequency="epoch", max_to_keep=2):
        tf = _tf()
        self.directory = os.fspath(directory)
        if frequency != "epoch" and (not isinstance(frequency, int) or frequency < 1):
            raise ValueError(f"`backup_frequency` must be 'epoch' or a positive number of steps, got {frequency!r}.")
        self.frequency = frequency
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_step")
        # Variables listed explicitly: through the model object, TensorFlow's checkpoint misses
        # the non-trainable ones of Keras 3 layers (batch-norm statistics).
        self.checkpoint = tf.train.Checkpoint(
            weights=list(model.weights), optimizer=list(model.optimizer.variables), epoch=self.epoch, step=self.step
        )
        self.info = info
        # Other workers save too (checkpointing reads replicated variables collectively) but
        # into scratch folders of their own, outside the chief's, which the chief may delete.
        own = self.directory if info.is_chief else tempfile.mkdtemp(prefix=f"keras_sceneparse_backup_{info.worker_id}_")
        self.manager = tf.train.CheckpointManager(self.checkpoint, own, max_to_keep=max_to_keep)

    def restore(self):
        """Restores the chief's latest checkpoint; returns ``(epoch, step)`` to resume at."""
        latest = _tf().train.latest_checkpoint(self.directory)
        if latest is None:
            return 0, 0
        self.checkpoint.restore(latest).expect_partial()
        return int(self.epoch.numpy()), int(self.step.numpy())

    def save(self, epoch, step):
        """Every worker must call this at the same points (checkpointing is collective)."""
        self.epoch.assign(epoch)
        self.step.assign(step)
        self.manager.save()

    def due(self, step):
        return self.frequency != "epoch" and step % self.frequency == 0

    def clear(self):
        """Removes this worker's checkpoints after a successful run."""
        shutil.rmtree(self.manager.directory, ignore_errors=True)


class DistributedLoop:
    """Trains a compiled model under a ``tf.distribute`` strategy, like ``model.fit`` does.

    Args:
        model: a compiled Keras model built in ``strategy.scope()``.
        strategy: the ``tf.distribute.Strategy``.
        backup_dir: folder for restart checkpoints (shared by all workers), or ``None``.
        backup_frequency: ``"epoch"`` or a number of steps between checkpoints.
    """

    def __init__(self, model, strategy, backup_dir=None, backup_frequency="epoch"):
        self.model = model
        self.strategy = strategy
        self.info = cluster_info()
        self.backup = None if backup_dir is None else StepBackup(model, backup_dir, self.info, backup_frequency)
        self._train_function = None
        self._test_function = None
        self._scratch = None

    # --- steps ---------------------------------------------------------------------------

    def _replica_step(self, data, training):
        tf = _tf()
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        weights = tf.ones((batch,)) if sample_weight is None else tf.cast(tf.reshape(sample_weight, (batch, -1))[:, 0], "float32")
        context = tf.distribute.get_replica_context()
        total_weight = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(weights))
        with tf.GradientTape() as tape:
            y_pred = model(x, training=training)
            losses = tf.cast(example_losses(model, x, y, y_pred), "float32")
            loss = tf.math.divide_no_nan(tf.reduce_sum(losses * weights), total_weight)
            if model.losses:
                loss += tf.add_n([tf.cast(value, "float32") for value in model.losses]) / self.strategy.num_replicas_in_sync
            scaled = model.optimizer.scale_loss(loss) if training else loss
        if training:
            gradients = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return loss, tf.cast(batch, "float32")

    def _make_function(self, training):
        tf = _tf()
        strategy = self.strategy

        @tf.function
        def step(iterator):
            optional = iterator.get_next_as_optional()
            if optional.has_value():
                loss, count = strategy.run(self._replica_step, args=(optional.get_value(), training))
                return True, strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", count, axis=None)
            return False, tf.constant(0.0), tf.constant(0.0)

        return step

    def _distribute(self, dataset):
        tf = _tf()
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return iter(self.strategy.experimental_distribute_dataset(dataset.with_options(options)))

    # --- epochs --------------------------------------------------------------------------

    def _logs(self, loss_sum, count):
        logs = {"loss": loss_sum / count if count else float("nan")}
        logs.update((name, value) for name, value in _flatten(self.model.get_metrics_result()).items() if name != "loss")
        return {name: float(value) for name, value in logs.items()}

    def _reset_metrics(self):
        for metric in self.model.metrics:
            metric.reset_state()

    def evaluate(self, data, steps=None):
        """Loss and metrics over ``data`` (a tf.data.Dataset of global batches)."""
        if self._test_function is None:
            self._test_function = self._make_function(training=False)
        self._reset_metrics()
        iterator = self._distribute(data)
        loss_sum = count = 0.0
        for _ in range(steps) if steps else iter(int, 1):
            has_value, loss, batch = self._test_function(iterator)
            if not bool(has_value):
                break
            loss_sum += float(loss) * float(batch)
            count += float(batch)
        return self._logs(loss_sum, count)

    def fit(self, train_data, epochs, steps_per_epoch=None, validation_data=None, callbacks=None, verbose=1,
            initial_epoch=0):
        """Trains; ``train_data`` and ``validation_data`` are tf.data.Datasets of global
        batches or functions ``epoch -> Dataset``. Returns the ``keras.callbacks.History``."""
        tf = _tf()
        model = self.model
        if self._train_function is None:
            self._train_function = self._make_function(training=True)
        start_epoch, start_step = initial_epoch, 0
        if self.backup is not None:
            restored_epoch, restored_step = self.backup.restore()
            if (restored_epoch, restored_step) != (0, 0):
                start_epoch, start_step = restored_epoch, restored_step
                if verbose:
                    print(f"Resuming from the backup in {self.backup.directory}: epoch {start_epoch + 1}, step {start_step}.")
        callback_list = keras.callbacks.CallbackList(
            self._worker_callbacks(callbacks or []), add_history=True, add_progbar=bool(verbose), model=model,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch,
        )
        model.stop_training = False
        logs = {}
        try:
            callback_list.on_train_begin()
            for epoch in range(start_epoch, epochs):
                self._reset_metrics()
                callback_list.on_epoch_begin(epoch)
                dataset = _dataset_for(train_data, epoch)
                skipped = start_step if epoch == start_epoch else 0
                if skipped:
                    dataset = dataset.skip(skipped)
                iterator = self._distribute(dataset)
                loss_sum = count = 0.0
                step = skipped
                while steps_per_epoch is None or step < steps_per_epoch:
                    callback_list.on_train_batch_begin(step)
                    has_value, loss, batch = self._train_function(iterator)
                    if not bool(has_value):
                        break
                    loss_sum += float(loss) * float(batch)
                    count += float(batch)
                    step += 1
                    logs = self._logs(loss_sum, count)
                    callback_list.on_train_batch_end(step - 1, logs)
                    if self.backup is not None and self.backup.due(step):
                        self.backup.save(epoch, step)
                    if model.stop_training:
                        break
                epoch_logs = dict(logs)
                if validation_data is not None:
                    epoch_logs.update(
                        {f"val_{k}": v for k, v in self.evaluate(_dataset_for(validation_data, epoch)).items()}
                    )
                callback_list.on_epoch_end(epoch, epoch_logs)
                logs = epoch_logs
                if self.backup is not None and epoch + 1 < epochs and not model.stop_training:
                    self.backup.save(epoch + 1, 0)
                if model.stop_training:
                    break
            callback_list.on_train_end(logs)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as error:
            where = f" Restart every worker: they resume from the last backup in {self.backup.directory}." if self.backup else ""
            raise WorkerUnavailableError(
                f"A worker of this {self.info.num_workers}-worker job stopped answering "
                f"({type(error).__name__}: {str(error).splitlines()[0][:200]}).{where}"
            ) from error
        if self.backup is not None:
            self.backup.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        return model.history

    def _worker_callbacks(self, callbacks):
        """The chief keeps the callbacks; other workers write their files to a scratch folder."""
        if self.info.is_chief:
            return list(callbacks)
        self._scratch = tempfile.mkdtemp(prefix=f"keras_sceneparse_worker_{self.info.worker_id}_")
        redirected = []
        for callback in callbacks:
            attribute = next((a for cls, a in FILE_ATTRIBUTES.items() if isinstance(callback, cls)), None)
            if attribute is not None:
                callback = copy.copy(callback)
                original = os.fspath(getattr(callback, attribute))
                setattr(callback, attribute, os.path.join(self._scratch, os.path.basename(original) or "out"))
            redirected.append(callback)
        return redirected


def _flatten(logs):
    """Metrics whose result is a dict (e.g. SegmentationScores) contribute their entries."""
    flat = {}
    for name, value in logs.items():
        flat.update(_flatten(value) if isinstance(value, dict) else {name: value})
    return flat


def _dataset_for(data, epoch):
    return data(epoch) if callable(data) else data
