"""Argument checks with errors that name the argument, the value and what was expected."""

import numbers


def check_int(name, value, minimum=None, maximum=None):
    """Returns ``value`` as an int, or raises naming ``name`` and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}, got {value}.")
    return value


def check_num_classes(num_classes):
    """Segmentation needs at least two classes (one foreground and its complement)."""
    return check_int("num_classes", num_classes, minimum=2)


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices, key=repr)}, got {value!r}.")
    return value


def check_float(name, value, minimum=None, maximum=None, strict_minimum=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if minimum is not None and (value < minimum or (strict_minimum and value == minimum)):
        relation = ">" if strict_minimum else ">="
        raise ValueError(f"`{name}` must be {relation} {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}, got {value}.")
    return value


def check_image_shape(input_shape, name="input_shape", channels=None, min_size=None):
    """Validates a ``(height, width, channels)`` image shape; ``None`` sizes are allowed.

    Returns the shape as a tuple. ``channels`` (an int or a tuple of ints) restricts the
    channel count; ``min_size`` is the smallest static height/width the model accepts.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(
            f"`{name}` must be a (height, width, channels) tuple, got {input_shape!r}."
        ) from None
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` must have 3 entries (height, width, channels), got {input_shape!r} "
            f"with {len(shape)} entries."
        )
    height, width, depth = shape
    if depth is None:
        raise ValueError(f"`{name}` must give the channel count; got {input_shape!r}.")
    depth = check_int(f"{name}[2] (channels)", depth, minimum=1)
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if depth not in allowed:
            raise ValueError(
                f"`{name}` has {depth} channels but this model expects {' or '.join(map(str, allowed))}; "
                f"got {input_shape!r}."
            )
    sizes = []
    for axis, size in (("height", height), ("width", width)):
        if size is not None:
            size = check_int(f"{name} {axis}", size, minimum=1)
            if min_size is not None and size < min_size:
                raise ValueError(
                    f"`{name}` {axis} must be at least {min_size} for this model, got {size}."
                )
        sizes.append(size)
    return (sizes[0], sizes[1], depth)
