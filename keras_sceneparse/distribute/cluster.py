"""Where this process stands in a training job: TF_CONFIG, workers, chief."""

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """The part of ``TF_CONFIG`` a training loop needs.

    Attributes:
        num_workers: worker tasks in the cluster (1 without ``TF_CONFIG``).
        task_type: ``"worker"`` or ``"chief"`` (``None`` without a cluster).
        task_index: this task's index among its type.
        worker_id: a unique number of this task, 0 for the chief (or worker 0).
    """

    num_workers: int = 1
    task_type: str | None = None
    task_index: int = 0

    @property
    def is_chief(self):
        """The task that writes checkpoints, logs and the final model."""
        return self.task_type in (None, "chief") or (self.task_type == "worker" and self.worker_id == 0)

    @property
    def worker_id(self):
        return self.task_index + (1 if self.task_type == "worker" and self._has_chief else 0)

    @property
    def _has_chief(self):
        return bool(_tf_config().get("cluster", {}).get("chief"))

    @property
    def is_multi_worker(self):
        return self.num_workers > 1


def _tf_config():
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error.msg}): {text[:200]!r}") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {text[:200]!r}.")
    return config


def cluster_info():
    """This process's :class:`ClusterInfo`, read from the ``TF_CONFIG`` environment variable.

    ``TF_CONFIG`` is TensorFlow's: ``{"cluster": {"worker": ["host:port", ...]},
    "task": {"type": "worker", "index": i}}`` (an optional ``"chief"`` list counts as a worker).
    """
    config = _tf_config()
    if not config:
        return ClusterInfo()
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if workers == 0:
        raise ValueError("TF_CONFIG names no 'worker' (or 'chief') in its 'cluster'.")
    task_type = task.get("type")
    if task_type not in ("worker", "chief"):
        raise ValueError(f"TF_CONFIG task type must be 'worker' or 'chief', got {task_type!r}.")
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster.get(task_type, [])):
        raise ValueError(f"TF_CONFIG task index {index!r} is not one of the {task_type} tasks.")
    return ClusterInfo(num_workers=workers, task_type=task_type, task_index=index)


def tf_config_for(addresses, index):
    """The ``TF_CONFIG`` value (a JSON string) of worker ``index`` of a cluster of ``addresses``."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": int(index)}})
