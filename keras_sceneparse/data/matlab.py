"""Label matrices stored in MATLAB files (SYSU-Scenes' original layout, SIFT Flow)."""

import numpy as np
import scipy.io


def load_mat(path, description):
    """``scipy.io.loadmat`` with errors that name the file (and say how to fix v7.3 files)."""
    path = str(path)
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:
        raise ValueError(
            f"The {description} {path} is a MATLAB v7.3 (HDF5) file; save it with -v7 so scipy.io.loadmat reads it."
        ) from None
    except Exception as error:  # scipy.io raises many types (IndexError, TypeError, ...) on corrupt files
        raise ValueError(f"Cannot read the {description} {path}: {type(error).__name__}: {error}") from None


def read_label_matrix(path, variable):
    """The 2-D integer matrix ``variable`` of a MATLAB annotation file, as int32.

    MATLAB saves numbers as doubles by default; integral doubles are accepted. ``path`` may be
    bytes (as ``tf.numpy_function`` passes it).
    """
    path = path.decode() if isinstance(path, bytes) else str(path)
    contents = load_mat(path, "annotation")
    if variable not in contents:
        variables = sorted(key for key in contents if not key.startswith("__"))
        raise ValueError(f"The annotation {path} has no variable {variable!r}; it holds {variables}.")
    values = np.asarray(contents[variable])
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"The annotation {path} holds a {variable!r} of shape {values.shape}; expected (H, W).")
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu":
        raise ValueError(
            f"The annotation {path} holds a {variable!r} of {values.dtype} values; expected integer label numbers."
        )
    return values.astype(np.int32)
