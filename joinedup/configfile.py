"""Read a YAML configuration file into a pydantic model, with errors that name the file,
the line and the key, and list every problem at once (not just the first)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file is wrong. The message lists each problem as file:line key: what."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


def _line_index(node: yaml.Node, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each key path in a YAML document to its 1-based line number."""
    lines = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (key.value,)
            lines.update(_line_index(value, path))
            lines[path] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, prefix + (i,)))
    return lines


def load_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The document and an index of key path -> line; YAML syntax errors become ConfigError."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(path, [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    return data, (_line_index(node) if node is not None else {})


def describe_errors(
    exc: ValidationError, lines: dict[tuple[Any, ...], int], prefix: tuple[Any, ...] = ()
) -> list[str]:
    """One line per problem: ``line N: key.path: what is wrong``. ``prefix`` places errors of a
    model validated from a sub-mapping (e.g. an adapter's ``options``)."""
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line = None
        for n in range(len(loc), -1, -1):  # the deepest key we can place
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; unknown keys are never silently ignored)"
        problems.append(f"line {line}: {key}: {msg}" if line else f"{key}: {msg}")
    return problems


def load_model(path: Path, model: type[M], **context: Any) -> M:
    """Load and validate ``path`` as ``model``; every problem reported in one ConfigError."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a YAML mapping (key: value lines)"])
    try:
        return model.model_validate(data, context=context or None)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(exc, lines)) from None
