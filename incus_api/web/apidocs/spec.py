"""The OpenAPI 3 description of every JSON route (served at /openapi.json, rendered at /docs), built
from the routes' own declarations (``incus_api.schemas``): what a route parses is what it describes.
The API's routes take the ``apiHash`` scheme (the document's default); the customer panel's JSON
routes (``/customer/...``) take the customer's session cookie, and for a change its CSRF token too.
The panel's HTML (its page and page parts, the link that signs in, the signed-out page) and its
console's WebSocket are not JSON routes and are not described.
"""
from ...schemas import ROUTES
from ..customer.views import COOKIE, CUSTOMER_CSRF, CUSTOMER_SESSION

API_HASH = "apiHash"

ERROR_TEXTS = {
    400: "Bad input (the message says which field and why)",
    401: "Missing or wrong X-API-Hash",
    403: "Not this caller's to change (the message says why)",
    404: "No such container, rule or image (`status: NotFound`)",
    409: "Conflict: the name, port or image is taken or in use",
    410: "The session's container no longer exists, or was made again under its name: the session ends",
    413: "Request body too large",
    429: "Too many at once: EXEC_PER_CONTAINER commands already run in this container",
    500: "Incus or the kernel refused the change (the message carries their reason)",
    502: "The remote image server failed",
    503: "The Incus daemon is unreachable",
    504: "The operation did not finish in time",
}
# What the codes mean on the customer panel's routes (its session, its CSRF token).
CUSTOMER_ERROR_TEXTS = {
    400: "Bad input (the message says which field and why), or a change without the CSRF token",
    401: "No customer session: never signed in by a link, signed out, or expired",
    409: "Conflict: the container is suspended (nothing changes), or the port or name is taken",
}
SECURITY_SCHEMES = {
    API_HASH: {"type": "apiKey", "in": "header", "name": "X-API-Hash",
               "description": "Hex SHA-256 of API_SECRET_KEY (or the dashboard's admin session)."},
    CUSTOMER_SESSION: {"type": "apiKey", "in": "cookie", "name": COOKIE, "description": (
        "The customer's session, set when the browser opens a one-time link (`POST /container/{name}/customer_link`): "
        "HttpOnly, scoped to `/customer`, valid for one container, the one every customer route acts on. Answers are "
        "JSON when the request accepts `application/json` (as the panel's script sends); without a session a GET that "
        "asks for HTML gets the 401 page.")},
    CUSTOMER_CSRF: {"type": "apiKey", "in": "header", "name": "X-CSRFToken", "description": (
        "The CSRF token of the customer's panel page (its body's `data-csrf`), valid with the page's own session "
        "cookie; every POST and DELETE of the panel needs it, in this header or as the `csrf_token` form field "
        "(400 otherwise).")},
}


def _errors(codes, texts):
    return {str(code): {"description": texts[code], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code in codes}


def _result(description, properties):
    body = {"allOf": [{"$ref": "#/components/schemas/Result"}]}
    if properties:
        body["allOf"].append({"type": "object", "properties": properties})
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _operation(route):
    if route.redirect:
        responses = {"302": {"description": f"Done: redirects to `{route.redirect}`",
                             "headers": {"Location": {"schema": {"type": "string"}}}}}
    elif route.accepted:
        responses = {"202": _result("Started: it goes on in the background", route.answer)}
    elif route.answer_schema is not None:
        responses = {"200": {"description": "Done", "content": {"application/json": {"schema": route.answer_schema}}}}
    else:
        responses = {"200": _result("Done", route.answer)}
    for code, (description, properties) in route.extra_answers.items():
        responses[str(code)] = _result(description, properties)
    customer = CUSTOMER_SESSION in (route.security or ())
    responses.update(_errors(route.errors, {**ERROR_TEXTS, **CUSTOMER_ERROR_TEXTS} if customer else ERROR_TEXTS))
    operation = {"summary": route.summary, "responses": responses}
    if route.security is not None:
        operation["security"] = [{scheme: [] for scheme in route.security}]
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
    from .. import api, customer  # noqa: F401  (importing the blueprints declares their routes)

    paths = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "incus-api-web",
            "version": "1.0",
            "description": "Incus containers and their NAT rules over HTTP. Every route but the customer "
                           "panel's needs the X-API-Hash header (hex SHA-256 of API_SECRET_KEY) or the dashboard's "
                           "session; the customer panel's (`/customer/...`) need the customer's session (a one-time "
                           "link signs a browser in, for one container) and, for a change, its CSRF token. Answers are "
                           "JSON with `status` (success, error, warning, NotFound) and `message`. Numbers are "
                           "ASCII digits only. The dashboard's login (not part of this API) answers 429 with "
                           "Retry-After after 5 attempts a minute per user name and address; the customer panel's "
                           "pages (`/customer`, the link `/customer/{token}`) are HTML, not part of this API.",
        },
        "security": [{API_HASH: []}],
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
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
