"""Small readers of text formats shared by the data readers and the tools."""

import json
from pathlib import Path


def read_json_lines(path):
    """``[(line number, object)]`` of a JSON-lines file (blank lines skipped).

    Raises ValueError naming the file and the line when a line is not valid JSON or not a
    JSON object.
    """
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg}, column {error.colno}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
            rows.append((number, row))
    return rows
