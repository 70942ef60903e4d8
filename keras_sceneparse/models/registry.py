"""Model registry: every architecture is available by name through :func:`get`."""

import difflib
import inspect

_REGISTRY = {}


def register_model(name, **defaults):
    """Class decorator registering a model under ``name`` with default constructor arguments.

    A class may be registered under several names with different defaults, e.g.
    ``@register_model("fcn8s", variant="8s")`` and ``@register_model("fcn32s", variant="32s")``.
    """

    def decorator(model_class):
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered ({_REGISTRY[name][0].__name__}).")
        _REGISTRY[name] = (model_class, dict(defaults))
        return model_class

    return decorator


def list_models():
    """Sorted names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def model_class(name):
    """The class and default arguments behind a registered name."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Available models: {', '.join(list_models())}.")
    return _REGISTRY[name]


def get(name, **kwargs):
    """Builds the model registered as ``name``; ``kwargs`` override its defaults.

    Example:
        >>> model = get("unet", num_classes=12, input_shape=(None, None, 3))
    """
    cls, defaults = model_class(name)
    arguments = {**defaults, **kwargs}
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    unknown = sorted(set(arguments) - set(accepted) - {"name", "dtype", "trainable"})
    if unknown:
        raise TypeError(
            f"Model {name!r} ({cls.__name__}) got unexpected argument(s) {unknown}; it accepts {accepted}."
        )
    return cls(**arguments)


def describe(name):
    """First paragraph of a model's docstring: what it is and which paper it follows."""
    cls, defaults = model_class(name)
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ")
