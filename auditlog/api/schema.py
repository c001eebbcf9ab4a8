"""OpenAPI descriptions drf-spectacular cannot infer on its own."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    "ValidationError": {
        "type": "object",
        "description": "Each invalid field (or detail, non_field_errors, search) with messages.",
        "properties": {
            "detail": {"type": "string"},
            "non_field_errors": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": {},
    },
    "GenericError": {
        "type": "object",
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "required": ["detail"],
    },
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "auditlog.api.authentication.BearerTokenAuthentication"
    name = "authentik"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (intent api): Authorization: Bearer <key>.",
        }


def _error(component: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _errors_of(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The refusals every operation can answer with (as authentik's schema lists them)."""
    errors = {
        "403": _error("GenericError", "Not signed in, or no permission."),
        "503": _error("GenericError", "The database is unavailable; try again."),
    }
    parameters = operation.get("parameters", [])
    locations = {parameter.get("in") for parameter in parameters}
    if "query" in locations or "requestBody" in operation:
        errors["400"] = _error("ValidationError", "Invalid input: the body says what is wrong.")
    if "path" in locations:
        errors["404"] = _error("GenericError", "Not found, or not visible to you.")
    elif any(parameter.get("name") == "page" for parameter in parameters):
        errors["404"] = _error("GenericError", "Invalid page (a page list starts at 1).")
    return errors


def document_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: add the error answers the views do not declare themselves."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in ERROR_COMPONENTS.items():
        schemas.setdefault(name, schema)
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in _errors_of(operation).items():
                responses.setdefault(code, response)
    return result


# Django's username check reads \w as any letter or digit of any script ("chloé.larsen"); a
# JSON Schema pattern reads it as ASCII only, so the pattern would call valid usernames
# invalid. Email addresses likewise: Django accepts internationalised domains that the
# "email" format refuses. Both are described in words, and checked by the API.
USERNAME = {
    "type": "string",
    "maxLength": 150,
    "description": "Letters and digits of any script, and @ . + - _ (at most 150).",
}
EMAIL = {"type": "string", "maxLength": 254, "description": "An email address, or empty."}


def describe_text_as_accepted(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: usernames and email addresses as the API accepts them."""
    for schema in result.get("components", {}).get("schemas", {}).values():
        properties = schema.get("properties", {})
        for name, replacement in (("username", USERNAME), ("email", EMAIL)):
            if name in properties and "$ref" not in properties[name]:
                kept = {
                    key: properties[name][key]
                    for key in ("readOnly", "minLength", "nullable")
                    if key in properties[name]
                }
                properties[name] = {**replacement, **kept}
    return result


def bound_event_batch(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the batch endpoint's array has the length bounds that it enforces
    (drf-spectacular does not carry a list serializer's bounds over)."""
    from auditlog.ingest import MAX_BATCH

    operation = result.get("paths", {}).get("/api/v3/events/events/bulk/", {}).get("post")
    if operation:
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if media.get("schema", {}).get("type") == "array":
                media["schema"].update(minItems=1, maxItems=MAX_BATCH)
    return result
