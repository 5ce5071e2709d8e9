"""OpenAPI post-processing: the one error body, documented on every operation."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["type", "code", "detail", "errors"],
    "properties": {
        "type": {"type": "string", "description": "Error family, e.g. invalid_request_error."},
        "code": {"type": "string", "description": "Machine-readable reason."},
        "detail": {"type": "string", "description": "A sentence for people."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "detail"],
                "properties": {
                    "field": {"type": ["string", "null"]},
                    "code": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}

COMMON_ERRORS = {
    "400": "Invalid request; `errors` lists each invalid field.",
    "401": "Missing, unknown, expired or revoked access token.",
    "403": "The token lacks the scope this operation needs.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}
WRITE_ERRORS = {
    "409": "Conflicts with the current state, or an Idempotency-Key reused with another body.",
    "413": "The body is larger than the API accepts.",
}
DETAIL_ERRORS = {"404": "No such object in your organization."}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            wanted = dict(COMMON_ERRORS)
            if method in ("post", "put", "patch", "delete"):
                wanted |= WRITE_ERRORS
            if "{" in path:
                wanted |= DETAIL_ERRORS
            responses = operation.setdefault("responses", {})
            for status, description in wanted.items():
                responses.setdefault(status, {"description": description, "content": ref})
            for status, response in responses.items():  # an error an operation describes itself
                if status[:1] in "45" and "content" not in response:
                    response["content"] = ref
    return result


def strip_trailing_slashes(endpoints):
    """Routes accept an optional trailing slash; document the canonical form without it."""
    return [
        (path.rstrip("/") if path != "/" else path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]
