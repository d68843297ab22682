"""The OpenAPI document says what errors look like: every operation answers problems as
``application/problem+json`` (RFC 9457), so a generated client or a fuzzer can check them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.api.problems import MEDIA_TYPE

PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "code", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable; branch on this, not on the title"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "With validation_failed: the first field at fault"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def install(api: FastAPI) -> None:
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = PROBLEM
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    if "422" in responses:
                        responses["422"] = _problem("The request is not valid (validation_failed)")
                    responses["default"] = _problem("A problem: see its code")
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
