"""``python -m keras_sceneparse.cli``: the ``sceneparse`` command without the console script."""

import sys

from keras_sceneparse.cli.main import main

sys.exit(main())
