"""``args_schema=``: validate a run's input before anything is sent.

A schema is a JSON Schema dict or a pydantic model class. Validation
returns the input (a pydantic model's normalised dump) or raises
``InputError`` whose ``details`` list every problem as ``{"path",
"message"}``, so the API answers 422 and the CLI exits 2 with all of them
at once, not the first.

The JSON Schema support is the subset workflow inputs need (type,
properties, required, additionalProperties, items, enum, const, min/max
lengths, items and values, pattern, anyOf); an unsupported keyword in the
schema is reported when the workflow is defined, not silently ignored.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from agentcmd.errors import InputError, WorkflowDefinitionError

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}
_KNOWN = {"type", "properties", "required", "additionalProperties", "items", "enum", "const",
          "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
          "minItems", "maxItems", "pattern", "anyOf", "title", "description", "default", "examples",
          "$schema", "$id", "format"}

Problem = dict[str, str]


class SchemaDefinitionError(WorkflowDefinitionError, ValueError):
    """The schema itself is unusable (raised when the workflow is defined)."""

    code = "invalid_args_schema"
    fix_hint = "fix args_schema (a JSON Schema dict or a pydantic model; docs/workflows.md lists the keywords)"


def _check_schema(schema: Any, path: str = "#") -> None:
    if not isinstance(schema, dict):
        raise SchemaDefinitionError(f"args_schema at {path}: expected an object, got {type(schema).__name__}")
    unknown = set(schema) - _KNOWN
    if unknown:
        raise SchemaDefinitionError(f"args_schema at {path}: unsupported keyword(s) {sorted(unknown)}; "
                                    f"supported: {sorted(_KNOWN - {'title', 'description', 'default'})}")
    types = schema.get("type")
    for t in [types] if isinstance(types, str) else (types or []):
        if t not in _TYPES:
            raise SchemaDefinitionError(f"args_schema at {path}: unknown type {t!r}")
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{path}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_schema(schema[key], f"{path}/{key}")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_schema(sub, f"{path}/anyOf/{i}")


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _validate(value: Any, schema: dict[str, Any], path: str, out: list[Problem]) -> None:
    def bad(message: str) -> None:
        out.append({"path": path or "$", "message": message})

    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, t) for t in names):
            bad(f"expected {' or '.join(names)}, got {_json_type(value)}")
            return
    if "const" in schema and value != schema["const"]:
        bad(f"must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        bad(f"must be one of {schema['enum']!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            bad(f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            bad(f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            bad(f"must match {schema['pattern']!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        bounds = {"minimum": (">=", value >= schema.get("minimum", value)),
                  "maximum": ("<=", value <= schema.get("maximum", value)),
                  "exclusiveMinimum": (">", "exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"]),
                  "exclusiveMaximum": ("<", "exclusiveMaximum" not in schema or value < schema["exclusiveMaximum"])}
        for key, (word, ok) in bounds.items():
            if not ok:
                bad(f"must be {word} {schema[key]}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            bad(f"must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            bad(f"must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                _validate(item, schema["items"], f"{path}[{i}]", out)
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                out.append({"path": f"{path}.{name}" if path else name, "message": "is required"})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub_path = f"{path}.{name}" if path else name
            if name in props:
                _validate(item, props[name], sub_path, out)
            elif extra is False:
                out.append({"path": sub_path, "message": "is not an allowed property"})
            elif isinstance(extra, dict):
                _validate(item, extra, sub_path, out)
    if "anyOf" in schema:
        branches = []
        for sub in schema["anyOf"]:
            found: list[Problem] = []
            _validate(value, sub, path, found)
            branches.append(found)
        if all(branches):
            bad("does not match any of the allowed shapes: " +
                "; ".join(b[0]["message"] for b in branches if b))


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


class InputSchema:
    """A workflow's input schema: JSON Schema dict or pydantic model."""

    def __init__(self, source: dict[str, Any] | type[BaseModel]) -> None:
        self.model: type[BaseModel] | None = None
        if isinstance(source, type) and issubclass(source, BaseModel):
            self.model = source
            self.schema: dict[str, Any] = source.model_json_schema()
        elif isinstance(source, dict):
            _check_schema(source)
            self.schema = source
        else:
            raise SchemaDefinitionError(
                f"args_schema must be a JSON Schema dict or a pydantic model class, got {type(source).__name__}")

    def validate(self, data: Any, workflow_id: str = "") -> dict[str, Any]:
        """Return the validated input or raise ``InputError`` listing every problem."""
        problems: list[Problem] = []
        result: Any = data
        if self.model is not None:
            try:
                result = self.model.model_validate(data).model_dump(mode="json")
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"]) or "$"
                    problems.append({"path": loc, "message": err["msg"]})
        else:
            _validate(data, self.schema, "", problems)
        if not problems and not isinstance(result, dict):
            problems.append({"path": "$", "message": f"expected object, got {_json_type(result)}"})
        if problems:
            listed = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
            raise InputError(f"invalid input for workflow {workflow_id!r}: {listed}",
                             "fix the input to match the workflow's args_schema "
                             "('agentcmd workflows list --json' shows it)", details=problems)
        return dict(result)
