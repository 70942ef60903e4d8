"""Every architecture's default harness case, fitted in a compiled graph, and built for
150 classes (slow).

The default suite fits the zoo eagerly (see :func:`tests.harness.run_model_test`); this
module traces each default case's training step with unknown batch and spatial sizes,
as ``fit`` on padded tf.data batches does. Run it with ``python -m pytest -m slow``.
"""

import importlib
from pathlib import Path

import keras
import pytest

import keras_sceneparse as ksp
from tests.harness import run_model_test


def default_cases():
    cases = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path.stem == Path(__file__).stem:
            continue
        module = importlib.import_module(f"tests.models.{path.stem}")
        if getattr(module, "HARNESS_FITS_IN_A_GRAPH", False):  # its own runner fits in a graph
            continue
        for case in getattr(module, "HARNESS_CASES", ()):
            if not hasattr(case, "marks"):  # the slow variants stay with their modules
                cases.append(pytest.param(*case, id=f"{path.stem}-{case[0]}"))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", default_cases())
def test_fit_in_a_graph_with_unknown_sizes(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, graph_fit=True)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", default_cases())
def test_builds_for_150_classes(name, kwargs, input_shape, num_classes, ignore_class):
    # The harness cases use 2-5 classes; ADE20K's 150 is the other end of what the zoo
    # supports. Built with unknown sizes and called symbolically (nothing runs).
    model = ksp.models.get(name, num_classes=150, **kwargs)
    outputs = model(keras.Input((None, None, input_shape[-1])))
    outputs = outputs if isinstance(outputs, dict) else {"logits": outputs}
    # The logits and every output a loss scores (PointRend's point coordinates are not).
    for key in ("logits", *(model.auxiliary_loss_weights or {})):
        assert outputs[key].shape[-1] == 150, (name, key, outputs[key].shape)
