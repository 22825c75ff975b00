"""Reading a spec: `parse_spec` validates decoded data, `load_spec` reads a YAML or JSON
file, and either turns every problem into one `SpecError` that names each bad field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from sluicegate.errors import SpecError
from sluicegate.spec.deployment import DeploymentSpec
from sluicegate.spec.routers import RouterSpec
from sluicegate.spec.sources import MetricSourceSpec


def parse_spec(data: Any) -> DeploymentSpec:
    """Validate a decoded spec; every problem is reported at once in a `SpecError`."""
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        said = [_describe(e) for e in errors if not _said_per_instance(e, errors)]
        raise SpecError(said) from None


def _said_per_instance(error: Any, errors: list[Any]) -> bool:
    """A fleet's top level repeats its first instance's fields: a field missing there is
    reported once, for the instance."""
    loc = tuple(error["loc"])
    if error["type"] != "missing" or len(loc) != 3 or loc[0] != "router":
        return False
    return any(
        tuple(other["loc"][:3]) == (*loc[:2], "instances") and other["loc"][-1] == loc[-1]
        for other in errors
    )


def load_spec(path: str | Path) -> DeploymentSpec:
    """Read a YAML or JSON spec file."""
    import yaml  # a file-reading helper, never used from workflow code

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([f"{path}: cannot read ({err.strerror})"]) from None
    except UnicodeDecodeError as err:
        raise SpecError([f"{path}: not UTF-8 ({err.reason} at byte {err.start})"]) from None
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise SpecError([f"{path}: expected a mapping at the top level"])
        return parse_spec(data)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = file.suffix.lstrip(".") or "YAML"
        raise SpecError([f"{path}: not valid {kind}: {_syntax_error(err)}"]) from None
    except RecursionError:
        raise SpecError([f"{path}: nested too deeply to be a spec"]) from None


def _syntax_error(err: Exception) -> str:
    """One line: what is wrong and where (YAML's own message quotes the file over lines)."""
    import yaml

    mark = getattr(err, "problem_mark", None)
    if isinstance(err, yaml.MarkedYAMLError) and mark is not None:
        return f"{err.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split())


# Fields holding a union chosen by `type`: pydantic puts the chosen type in the location.
_BY_TYPE = ("router", "source")


def _type_names(union: Any) -> tuple[str, ...]:
    members = get_args(get_args(union)[0])
    return tuple(member.model_fields["type"].default for member in members)


_TYPES = {"router": _type_names(RouterSpec), "source": _type_names(MetricSourceSpec)}
_TYPES["extra_sources"] = _TYPES["source"]


def _is_type_tag(loc: tuple[Any, ...], index: int) -> bool:
    if index == 0:
        return False
    before = loc[index - 1]
    in_list = isinstance(before, int) and index > 1 and loc[index - 2] == "extra_sources"
    return before in _BY_TYPE or in_list


def _describe(error: Any) -> str:
    loc = error["loc"]
    location = [part for index, part in enumerate(loc) if not _is_type_tag(loc, index)]
    where = ".".join(str(part) for part in location) or "spec"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        got = error.get("ctx", {}).get("tag")
        message = f"unknown type {got!r}" if got else "required"
        field = next(str(part) for part in reversed(location) if not isinstance(part, int))
        return f"{where}.type: {message}; valid: {', '.join(_TYPES[field])}"
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif error["type"] == "literal_error":
        message = f"{message}; got {error.get('input')!r}"
    return f"{where}: {message}"
