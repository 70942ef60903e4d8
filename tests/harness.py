"""One test harness for every layer and model, in the spirit of keras-hub's TestCase.

Each new layer or model adds one parametrised entry that calls :func:`run_layer_test`
or :func:`run_model_test`. The harness checks what every public class promises:

- it builds, and calls symbolically (``keras.Input``) and eagerly with the expected shape;
- ``get_config`` / ``from_config`` recreate it;
- ``model.save("x.keras")`` / ``keras.models.load_model`` round-trip with identical
  outputs and *no* ``custom_objects``;
- one ``fit`` step runs and changes the trainable weights.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_sceneparse as ksp


def _as_tuple(x):
    return x if isinstance(x, (tuple, list)) else (x,)


def _shapes(outputs):
    return [tuple(o.shape) for o in _as_tuple(outputs)]


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in _as_tuple(outputs)]


def assert_saved_model_roundtrip(model, inputs, atol=1e-6):
    """Saves to ``.keras``, loads without custom_objects, and compares inference outputs.

    The outputs are compared on eager calls: tracing a graph for each side would double the
    cost of the check (the callers test ``predict`` in a graph separately)."""
    expected = keras.tree.flatten(model(inputs, training=False))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        restored = keras.models.load_model(path)
    assert type(restored) is type(model), f"loaded a {type(restored).__name__}, saved a {type(model).__name__}"
    actual = keras.tree.flatten(restored(inputs, training=False))
    assert len(actual) == len(expected), (len(actual), len(expected))
    for e, a in zip(_numpy(expected), _numpy(actual)):
        np.testing.assert_allclose(a, e, atol=atol, rtol=1e-5)
    return restored


def unknown_size_dataset(*arrays):
    """One batch of ``arrays`` (images ``(B, H, W, C)``, labels ``(B, H, W)``) as a
    tf.data.Dataset whose batch and spatial sizes are unknown (None) to the graph, as they
    are for padded batches of images of different sizes; channels stay known."""
    signature = tuple(
        tf.TensorSpec((None,) * 3 + tuple(a.shape[3:]), tf.as_dtype(a.dtype)) for a in arrays
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter([arrays]), output_signature=signature)
    return dataset.map(lambda *x: x[0]) if len(arrays) == 1 else dataset


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    call_kwargs=None,
    symbolic_input_shape=None,
    expected_num_trainable_weights=None,
    run_training_check=True,
):
    """Checks a layer: build, symbolic/eager calls, config round trip, saving, one fit step.

    ``input_data`` is one array or a tuple of arrays passed positionally;
    ``expected_output_shape`` a shape or a tuple of shapes for multi-output layers;
    ``symbolic_input_shape`` optional shapes (without batch) for the ``keras.Input``s,
    e.g. with ``None`` sizes (defaults to the data's shapes).
    """
    call_kwargs = call_kwargs or {}
    inputs = _as_tuple(input_data)
    expected = [tuple(s) for s in (expected_output_shape if isinstance(expected_output_shape[0], (tuple, list)) else [expected_output_shape])]

    # Eager call.
    layer = layer_cls(**init_kwargs)
    outputs = layer(*inputs, **call_kwargs)
    assert _shapes(outputs) == expected, f"eager output shapes {_shapes(outputs)} != expected {expected}"

    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights

    # Config round trip.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    registered = keras.saving.get_registered_name(layer_cls)
    assert registered.startswith("keras_sceneparse>"), f"{layer_cls.__name__} is not registered: {registered}"

    # Symbolic call inside a functional model, then saving.
    shapes = symbolic_input_shape or [x.shape[1:] for x in inputs]
    symbolic = [keras.Input(shape=tuple(s), dtype=keras.backend.standardize_dtype(x.dtype)) for s, x in zip(shapes, inputs)]
    symbolic_out = layer_cls(**init_kwargs)(*symbolic, **call_kwargs)
    for out, shape in zip(_as_tuple(symbolic_out), expected):
        for got, want in zip(out.shape[1:], shape[1:]):
            assert got is None or got == want, f"symbolic shape {out.shape} incompatible with {shape}"
    model_inputs = symbolic if len(symbolic) > 1 else symbolic[0]
    model = keras.Model(model_inputs, symbolic_out)
    model_data = list(inputs) if len(inputs) > 1 else inputs[0]
    assert_saved_model_roundtrip(model, model_data)
    # Inside a compiled graph (the saving check above calls eagerly).
    eager_outputs = keras.tree.flatten(model(model_data, training=False))
    for graph, eager in zip(_numpy(model.predict(model_data, verbose=0)), _numpy(eager_outputs)):
        np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-5)

    if run_training_check and model.trainable_weights:
        float_outputs = [o for o in _as_tuple(symbolic_out) if "float" in o.dtype]
        trainer = keras.Model(model_inputs, float_outputs[0])
        trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        before = [w.numpy().copy() for w in trainer.trainable_weights]
        target = np.random.default_rng(0).normal(size=_shapes(trainer(list(inputs) if len(inputs) > 1 else inputs[0]))[0])
        trainer.fit(list(inputs) if len(inputs) > 1 else inputs[0], target, epochs=1, batch_size=len(inputs[0]), verbose=0)
        changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, trainer.trainable_weights)]
        assert any(changed), "one fit step changed no trainable weight"
    return layer


def run_model_test(
    name,
    init_kwargs,
    input_shape,
    num_classes,
    batch_size=2,
    ignore_class=None,
    check_saving=True,
    expect_changed=(),
    graph_fit=False,
):
    """Checks a registered segmentation model end to end.

    Builds ``ksp.models.get(name, num_classes=..., **init_kwargs)`` with unknown spatial
    sizes, calls it symbolically and eagerly on ``input_shape`` images (output logits at
    the input size), round-trips it through ``.keras``, and fits one step with the
    library's loss and metric, checking that the loss is finite and weights change.

    Models with auxiliary outputs (a dict with ``"logits"``) are checked output by output:
    every output scores the classes (the main one at the input size), ``predict`` returns
    the main logits only. ``expect_changed`` names layer paths (prefixes) whose weights the fit step must
    change, e.g. ``("classifier/", "aux_classifier/")`` to see every head learn.

    The forward pass always runs in a compiled graph with unknown sizes (``predict`` on
    :func:`unknown_size_dataset`). The fit step runs eagerly unless ``graph_fit``: tracing a
    training graph costs 5-10 s of CPU per model against about 1 s eagerly, which the
    default suite cannot afford for the whole zoo. U-Net and DeepLabV3+ fit in a graph in
    the default suite, and ``tests/models/test_graph_fit.py`` (marked slow) fits
    every architecture's default case in a graph.
    """
    model = ksp.models.get(name, num_classes=num_classes, **init_kwargs)
    assert isinstance(model, ksp.models.SegmentationModel)
    height, width, channels = input_shape
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(batch_size, height, width, channels)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch_size, height, width)).astype("int32")

    symbolic = model(keras.Input(shape=(None, None, channels)))
    symbolic = symbolic if isinstance(symbolic, dict) else {"logits": symbolic}
    assert "logits" in symbolic and all(output.shape[-1] == num_classes for output in symbolic.values())
    if len(symbolic) > 1:
        assert model.has_auxiliary_outputs and set(model.auxiliary_loss_weights) <= set(symbolic)

    outputs = model(images, training=False)
    outputs = outputs if isinstance(outputs, dict) else {"logits": outputs}
    for key, output in outputs.items():
        # Auxiliary outputs may be coarser (ICNet's cascade; the labels are resized to them) or
        # per image (EncNet's class presence, with its own loss).
        expected = (batch_size, height, width) if key == "logits" else (batch_size, *output.shape[1:-1])
        assert tuple(output.shape) == (*expected, num_classes), (key, output.shape)
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))
    logits = keras.ops.convert_to_numpy(outputs["logits"])

    # Inside a compiled graph with sizes unknown until run time (tf.data from padded batches).
    dynamic_logits = model.predict(unknown_size_dataset(images), verbose=0)
    np.testing.assert_allclose(dynamic_logits, logits, atol=1e-4)

    # Saved configs never ask for a download: the weights travel in the .keras file.
    assert model.get_config().get("weights") is None
    if check_saving:
        restored = assert_saved_model_roundtrip(model, images, atol=1e-5)
        assert restored.auxiliary_loss_weights == model.auxiliary_loss_weights
        assert sorted(restored.auxiliary_losses) == sorted(model.auxiliary_losses)

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_class),
        metrics=[ksp.metrics.MeanIoU(num_classes, ignore_class=ignore_class)],
        run_eagerly=not graph_fit,
    )
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    # Fit on batches whose sizes the graph cannot know in advance, the harder case.
    history = model.fit(unknown_size_dataset(images, labels), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert 0.0 <= history.history["mean_iou"][0] <= 1.0
    changed = {w.path for w in model.trainable_weights if not np.allclose(before[w.path], w.numpy())}
    assert changed, "one fit step changed no trainable weight"
    if expect_changed == "heads":  # every head learns: each output's loss reaches its classifier
        expect_changed = [f"{key}_classifier/" if key != "logits" else "classifier/" for key in outputs]
    for prefix in expect_changed:
        assert any(path.startswith(prefix) for path in changed), (prefix, sorted(changed)[:5])
    return model


#: Backends other than TensorFlow that the environment has (JAX is a test dependency).
OTHER_BACKENDS = ["jax"] + (["torch"] if importlib.util.find_spec("torch") is not None else [])

_BACKEND_SCRIPT = """
import sys
import keras
import numpy as np
import keras_sceneparse  # registers the library's classes
assert keras.backend.backend() == sys.argv[4], keras.backend.backend()
model = keras.models.load_model(sys.argv[1])
data = np.load(sys.argv[2])
inputs = [data[f"arr_{i}"] for i in range(len(data.files))]
outputs = model(inputs if len(inputs) > 1 else inputs[0])
np.savez(sys.argv[3], *[keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)])
"""


def run_under_backend(backend, model, inputs, folder):
    """Saves ``model``, loads it in a fresh process under Keras ``backend``, and returns its
    outputs on ``inputs`` (a list of arrays), to compare with TensorFlow on the same weights."""
    folder = Path(folder)
    model.save(folder / "model.keras")
    np.savez(folder / "inputs.npz", *inputs)
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    paths = [str(folder / name) for name in ("model.keras", "inputs.npz", "out.npz")]
    process = subprocess.run(
        [sys.executable, "-c", _BACKEND_SCRIPT, *paths, backend], capture_output=True, text=True,
        env=environment, cwd=str(Path(__file__).resolve().parents[1]), timeout=300, check=False,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    outputs = np.load(folder / "out.npz")
    return [outputs[f"arr_{i}"] for i in range(len(outputs.files))]
