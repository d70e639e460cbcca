"""Load YAML into frozen pydantic models; every error names file, line, key path and expectation."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message lists every problem found."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


def _line_of(node: yaml.Node | None, key_path: tuple) -> int | None:
    """1-based line of the deepest node along key_path that exists in the YAML tree."""
    line = None
    for key in key_path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _describe(error: dict, root: yaml.Node | None) -> str:
    loc = tuple(error["loc"])
    key_path = ".".join(str(part) for part in loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"line {line}: " if line else ""
    got = ""
    if error.get("type") not in ("missing",) and "input" in error:
        value = error["input"]
        if not isinstance(value, (dict, list)):
            got = f" (got {value!r})"
    return f"{where}{key_path}: {error['msg']}{got}"


def parse_yaml(path: Path | str) -> tuple[object, yaml.Node | None]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}invalid YAML: {problem}"]) from exc
    return data, root


def load_model(path: Path | str, model: type[Model]) -> Model:
    """Parse and validate path into model, or raise ConfigError listing every problem."""
    data, root = parse_yaml(path)
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(e, root) for e in exc.errors()]) from exc
