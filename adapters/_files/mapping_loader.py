"""Loading a YAML mapping file into a validated model, with errors that name file, line and key.

The YAML is composed into a node tree (which keeps line marks) and constructed from the same
parse, so each pydantic error location can be walked back to the node it came from. Duplicate
keys, which PyYAML would silently resolve to the last one, are refused.

`extends: default` (the adapter's bundled mapping) or `extends: <relative path>` lets a site file
hold only its differences: mappings merge key by key, lists and scalars replace.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import ValidationError

from adapters._files.mapping import FileMapping, KeyPath, Problem
from adapters.errors import MappingError

if TYPE_CHECKING:
    from pathlib import Path

M = TypeVar("M", bound=FileMapping)
_MAX_EXTENDS = 4


class MappingValidationError(MappingError):
    """A mapping failed validation; `problems` lists `file:line: key: message` strings."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {noun} in mapping {source}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class _Document:
    path: Path
    raw: bytes
    node: yaml.Node | None
    data: dict[str, Any]


def load_mapping_file(path: Path, model: type[M], *, default: Path | None = None) -> M:
    """Parse, merge (`extends`) and validate `path` as `model`; raise MappingError on any problem."""
    chain = _load_chain(path, default)
    merged: dict[str, Any] = {}
    for document in reversed(chain):  # base first, so the extending file wins
        merged = _merge(merged, document.data)
    merged.pop("extends", None)
    try:
        mapping = model.model_validate(merged)
    except ValidationError as exc:
        raise MappingValidationError(str(path), [_describe(chain, e) for e in exc.errors()]) from exc
    problems = mapping.problems()
    if problems:
        raise MappingValidationError(str(path), [_describe_problem(chain, p) for p in problems])
    digest = hashlib.sha256(b"".join(d.raw for d in chain)).hexdigest()
    mapping.stamp(version=digest[:12], source=str(path))
    return mapping


def _load_chain(path: Path, default: Path | None) -> list[_Document]:
    chain = [_parse(path)]
    while (target := chain[-1].data.get("extends")) is not None:
        current = chain[-1]
        if len(chain) > _MAX_EXTENDS:
            raise MappingError(f"{current.path}: `extends` nests deeper than {_MAX_EXTENDS} files")
        if target == "default":
            if default is None:
                raise MappingError(f"{current.path}: `extends: default`, but the adapter has no default")
            base = default
        elif isinstance(target, str):
            base = current.path.parent / target
        else:
            raise MappingError(f"{current.path}: `extends` must be `default` or a file path, not {target!r}")
        if any(d.path.resolve() == base.resolve() for d in chain):
            raise MappingError(f"{current.path}: `extends` forms a cycle through {base}")
        chain.append(_parse(base))
    return chain


def _parse(path: Path) -> _Document:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: mapping files are UTF-8; byte offset {exc.start} is not") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicate_keys(path, node)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise MappingError(f"{where}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise MappingError(f"{path}:1: a mapping file must be a YAML mapping, not {type(data).__name__}")
    return _Document(path=path, raw=raw, node=node, data=data)


def _refuse_duplicate_keys(path: Path, node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise MappingError(
                    f"{path}:{key.start_mark.line + 1}: key {name!r} repeats the one on line {seen[name]}"
                )
            seen[name] = key.start_mark.line + 1
            _refuse_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(path, item)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(chain: list[_Document], error: Any) -> str:
    loc: KeyPath = tuple(p for p in error["loc"] if isinstance(p, str | int))
    message = str(error["msg"])
    where, node = _where(chain, loc)
    if error["type"] == "string_type" and isinstance(node, yaml.ScalarNode) and not node.style:
        # YAML 1.1 reads 0301 as an octal int and yes/no as booleans: the fix is quoting.
        message += f" (YAML read {node.value!r} as {type(error['input']).__name__}: quote it)"
    return f"{where}: {_dotted(loc)}: {message}"


def _describe_problem(chain: list[_Document], problem: Problem) -> str:
    loc, message = problem
    where, _ = _where(chain, loc)
    return f"{where}: {_dotted(loc)}: {message}"


def _where(chain: list[_Document], loc: KeyPath) -> tuple[str, yaml.Node | None]:
    """`file:line` of the key at `loc`: the first file that holds it exactly, else the nearest."""
    nearest: tuple[str, yaml.Node | None] | None = None
    for document in chain:
        if document.node is None:
            continue
        node, line, exact = _walk(document.node, loc)
        where = f"{document.path}:{line}"
        if exact:
            return where, node
        nearest = nearest or (where, node)
    return nearest or (str(chain[0].path), None)


def _walk(node: yaml.Node, loc: KeyPath) -> tuple[yaml.Node, int, bool]:
    """The node at `loc`, the line to name, and whether `loc` was reached exactly.

    The line is that of the last key on the path (a block list starts on the line below its
    key, but people look for the key), or of the list item; when the path leaves the file, the
    deepest node reached stands in (a missing key is reported at its parent).
    """
    line = node.start_mark.line + 1
    key_node: yaml.Node | None = None
    for part in loc:
        if part == "[key]" and key_node is not None:
            node = key_node  # pydantic marks an invalid dict key this way: point at the key itself
        elif isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                return node, line, False
            key_node, node = pair
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return node, line, False
    return node, line, True


def _dotted(loc: KeyPath) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else part
    return text or "(top level)"
