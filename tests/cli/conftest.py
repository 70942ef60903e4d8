"""Fixtures of the command-line tests: a tiny synthetic data set and one short training run."""

import pytest
from tensorflow.python.framework import config as tf_config

from keras_sceneparse.cli import main
from tests.cli.cli_helpers import CLASS_NAMES, SAMPLE_SIZE, train_argv

# `sceneparse train` enables TensorFlow op determinism for the whole process, as it should in
# a process of its own. In-process tests turn it back off, so that the suites run after this
# one (and Keras' XLA, which it disables) see TensorFlow as they would alone.
DETERMINISM_AT_START = tf_config.is_op_determinism_enabled()


@pytest.fixture(autouse=True)
def _restore_op_determinism():
    yield
    if not DETERMINISM_AT_START:
        tf_config.disable_op_determinism()


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """8 training and 4 validation scenes of 32x48: ``(root, ImageFolder)``."""
    from keras_sceneparse import data

    root = tmp_path_factory.mktemp("sample")
    return root, data.write_sample_dataset(root, num_train=8, num_val=4, size=SAMPLE_SIZE, seed=0)


@pytest.fixture(scope="session")
def trained_run(sample_data, tmp_path_factory):
    """The output folder of one ``sceneparse train`` run on the sample data."""
    root, _ = sample_data
    output = tmp_path_factory.mktemp("run")
    assert main(train_argv(root, output, "--class-names", *CLASS_NAMES)) == 0
    return output
