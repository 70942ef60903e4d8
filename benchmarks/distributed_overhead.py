"""Step time and images/s of one process against N workers on this machine.

    python benchmarks/distributed_overhead.py --workers 2 --steps 20 --batch-size 8

Trains the same model on the same synthetic batches (global batch ``--batch-size``) with
``keras_sceneparse.distribute.fit``: once in one process (``model.fit``), once as
``--workers`` processes on 127.0.0.1 (``MultiWorkerMirroredStrategy`` and the library's
loop). Reports the median step time after warm-up. On a machine whose cores the workers
share, this measures the overhead of distribution (collectives, per-worker input pipelines),
not a speed-up.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile

WORKER = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from keras_sceneparse import distribute
strategy, steps, batch, size, output = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
plan = distribute.get_strategy(strategy)
import keras, numpy as np, tensorflow as tf
import keras_sceneparse as ksp
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
labels = rng.integers(0, 11, (batch, size, size)).astype("int32")
data = tf.data.Dataset.from_tensors((images, labels)).repeat(steps)
def build():
    model = ksp.models.get("deeplabv3plus", num_classes=11, backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.5},
                           aspp_filters=64, low_level_filters=16, decoder_filters=64)
    model.compile(keras.optimizers.Adam(1e-3), ksp.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ksp.metrics.MeanIoU(11)])
    return model
class Timer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None): self.times = []
    def on_train_batch_begin(self, batch, logs=None): self.start = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None): self.times.append(time.perf_counter() - self.start)
timer = Timer()
distribute.fit(build, data, epochs=1, steps_per_epoch=steps, strategy=plan, verbose=0, callbacks=[timer])
if distribute.cluster_info().is_chief:
    json.dump(timer.times, open(output, "w"))
"""


def median_after_warmup(times, warmup):
    return statistics.median(times[warmup:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()

    from keras_sceneparse.distribute.launcher import start_workers, wait_for_workers

    folder = tempfile.mkdtemp()
    script = os.path.join(folder, "worker.py")
    with open(script, "w") as handle:
        handle.write(WORKER)
    common = [str(args.steps), str(args.batch_size), str(args.image_size)]
    single_out = os.path.join(folder, "single.json")
    subprocess.run([sys.executable, script, "none", *common, single_out], check=True)
    multi_out = os.path.join(folder, "multi.json")
    log = io.StringIO()
    codes = wait_for_workers(start_workers([script, "multi-worker", *common, multi_out], args.workers, output=log))
    if codes != [0] * args.workers:
        with open(os.path.join(folder, "workers.log"), "w") as handle:
            handle.write(log.getvalue())
        sys.exit(f"workers failed with {codes} (whole log: {folder}/workers.log):\n{log.getvalue()[-3000:]}")
    rows = []
    for name, path in (("1 process (model.fit)", single_out), (f"{args.workers} workers (loop)", multi_out)):
        seconds = median_after_warmup(json.load(open(path)), args.warmup)
        rows.append((name, seconds, args.batch_size / seconds))
    print(f"global batch {args.batch_size} of {args.image_size}x{args.image_size}, {os.cpu_count()} CPU cores, "
          f"median of {args.steps - args.warmup} steps after {args.warmup} warm-up steps\n")
    print("| run | step time (s) | images/s |")
    print("|---|---|---|")
    for name, seconds, rate in rows:
        print(f"| {name} | {seconds:.3f} | {rate:.1f} |")


if __name__ == "__main__":
    main()
