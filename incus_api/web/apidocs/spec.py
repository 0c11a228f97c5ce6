"""The OpenAPI 3 description of every JSON route (served at /openapi.json, rendered at /docs), built
from the routes' own declarations (``incus_api.schemas``): what a route parses is what it describes.
"""
from ...schemas import ROUTES

ERROR_TEXTS = {
    400: "Bad input (the message says which field and why)",
    401: "Missing or wrong X-API-Hash",
    404: "No such container, rule or image (`status: NotFound`)",
    409: "Conflict: the name, port or image is taken or in use",
    413: "Request body too large",
    429: "Too many at once: EXEC_PER_CONTAINER commands already run in this container",
    500: "Incus or the kernel refused the change (the message carries their reason)",
    502: "The remote image server failed",
    503: "The Incus daemon is unreachable",
    504: "The operation did not finish in time",
}


def _errors(codes):
    return {str(code): {"description": ERROR_TEXTS[code], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code in codes}


def _result(description, properties):
    body = {"allOf": [{"$ref": "#/components/schemas/Result"}]}
    if properties:
        body["allOf"].append({"type": "object", "properties": properties})
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _operation(route):
    if route.answer_schema is not None:
        ok = {"description": "Done", "content": {"application/json": {"schema": route.answer_schema}}}
    else:
        ok = _result("Done", route.answer)
    responses = {"200": ok}
    for code, (description, properties) in route.extra_answers.items():
        responses[str(code)] = _result(description, properties)
    responses.update(_errors(route.errors))
    operation = {"summary": route.summary, "responses": responses}
    if route.description:
        operation["description"] = route.description
    parameters = [
        {"name": p.name, "in": p.where, "required": p.where == "path" or p.required, "schema": p.openapi_schema(),
         **({"description": p.description} if p.description else {})}
        for p in route.params if p.where in ("path", "query")
    ]
    if parameters:
        operation["parameters"] = parameters
    form = [p for p in route.params if p.where == "form"]
    if form:
        schema = {"type": "object", "properties": {p.name: p.openapi_schema() for p in form},
                  "required": [p.name for p in form if p.required]}
        operation["requestBody"] = {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        }}
    return operation


def build_spec():
    from .. import api  # noqa: F401  (importing the blueprint declares its routes)

    paths = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "incus-api-web",
            "version": "1.0",
            "description": "Incus containers and their NAT rules over HTTP. Every route needs the X-API-Hash "
                           "header (hex SHA-256 of API_SECRET_KEY) or the dashboard's session. Answers are "
                           "JSON with `status` (success, error, warning, NotFound) and `message`. Numbers are "
                           "ASCII digits only. The dashboard's login (not part of this API) answers 429 with "
                           "Retry-After after 5 attempts a minute per user name and address.",
        },
        "security": [{"apiHash": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiHash": {"type": "apiKey", "in": "header", "name": "X-API-Hash"}},
            "schemas": {
                "Result": {"type": "object", "required": ["status", "message"], "properties": {
                    "status": {"type": "string", "enum": ["success", "warning", "error"]},
                    "message": {"type": "string"}}},
                "Error": {"type": "object", "required": ["status", "message"], "properties": {
                    "status": {"type": "string", "enum": ["error", "NotFound"]},
                    "message": {"type": "string"}}},
            },
        },
    }
