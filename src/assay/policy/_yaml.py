"""Read YAML and remember where every value came from.

A policy error must point at a line. :func:`load_yaml_with_lines` parses a
document with PyYAML's safe loader and also returns a map from each value's
path (a tuple of mapping keys and sequence indexes, e.g.
``("tiers", "high", "checks", 2, "severity")``) to its 1-based line and
column. Duplicate keys in one mapping, which the safe loader would silently
collapse to the last one, are refused.
"""

from __future__ import annotations

from typing import Any

import yaml

from assay.errors import PolicyError

Path_ = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, 1-based column

try:  # the C loader is much faster; both build the same nodes
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[Path_, Position]]:
    """Parse ``text`` and return ``(data, positions)``.

    ``source`` names the document in error messages (a file name).
    Raises :class:`PolicyError` naming the line and column of a syntax
    error or of a duplicate key.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            positions: dict[Path_, Position] = {}
            _walk(node, (), positions, source)
            data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
            problem = exc.problem or exc.context or "invalid YAML"
            raise PolicyError(f"{where}: invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source}: invalid YAML: {exc}".replace("\n", " ")) from None
    finally:
        loader.dispose()
    return data, positions


def decode_text(text: str | bytes, source: str) -> str:
    """``text`` as a string: bytes are read as UTF-8 and a leading byte-order mark is
    dropped (from a string too). Raises :class:`PolicyError` naming ``source`` and the
    offset of an undecodable byte."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{source}: expected UTF-8 text, got an undecodable byte at "
                          f"offset {exc.start}") from None


def load_yaml_mapping(text: str | bytes, source: str, expected: str
                      ) -> tuple[dict[Any, Any], dict[Path_, Position]]:
    """:func:`decode_text` then :func:`load_yaml_with_lines` of a document that must be a
    mapping; ``expected`` says what it holds (``"a mapping with 'name' and 'tiers'"``)."""
    data, positions = load_yaml_with_lines(decode_text(text, source), source)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise PolicyError(f"{source}:1: expected {expected}, got {got}")
    return data, positions


def _key(node: yaml.Node) -> str | int:
    value = node.value if isinstance(node, yaml.ScalarNode) else str(node.value)
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int"):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _walk(node: yaml.Node, path: Path_, out: dict[Path_, Position], source: str) -> None:
    out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str | int, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<":
                # a merge key: positions of the merged values are those of the anchor
                _walk(value_node, path, out, source)
                continue
            key = _key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise PolicyError(
                    f"{source}:{line}: {_format((*path, key))}: duplicate key "
                    f"(already given at line {seen[key]})")
            seen[key] = line
            child = (*path, key)
            # point at the key: it is where a reader looks for the field
            out[child] = (line, key_node.start_mark.column + 1)
            _walk(value_node, child, out, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), out, source)


def _format(path: Path_) -> str:
    return format_path(path)


def format_path(path: Path_) -> str:
    """``("tiers", "high", "checks", 2, "severity")`` -> ``tiers.high.checks[2].severity``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def position_of(path: Path_, positions: dict[Path_, Position]) -> Position | None:
    """The position of ``path`` or of its nearest ancestor that was in the file."""
    p = tuple(path)
    while True:
        if p in positions:
            return positions[p]
        # keys may have been recorded as strings where pydantic reports ints, or back
        alt = tuple(str(x) if isinstance(x, int) else x for x in p)
        if alt in positions:
            return positions[alt]
        if not p:
            return None
        p = p[:-1]
