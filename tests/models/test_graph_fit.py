"""Every architecture's default harness case, fitted in a compiled graph (slow).

The default suite fits the zoo eagerly (see :func:`tests.harness.run_model_test`); this
module traces each default case's training step with unknown batch and spatial sizes,
as ``fit`` on padded tf.data batches does. Run it with ``python -m pytest -m slow``.
"""

import importlib
from pathlib import Path

import pytest

from tests.harness import run_model_test


def default_cases():
    cases = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path.stem == Path(__file__).stem:
            continue
        module = importlib.import_module(f"tests.models.{path.stem}")
        for case in getattr(module, "HARNESS_CASES", ()):
            if not hasattr(case, "marks"):  # the slow variants stay with their modules
                cases.append(pytest.param(*case, id=f"{path.stem}-{case[0]}"))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", default_cases())
def test_fit_in_a_graph_with_unknown_sizes(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, graph_fit=True)
