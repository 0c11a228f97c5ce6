"""The OpenAPI 3 description of every JSON route (served at /openapi.json, rendered at /docs).

Written by hand next to the routes; ``tests/unit/test_openapi.py`` fails when a route of the
``api`` blueprint is missing here or a described one no longer exists.
"""

NAME = {"type": "string", "pattern": "^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", "maxLength": 63,
        "description": "Container name: letters, digits, hyphens; starts with a letter."}
PORTS = {"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$",
         "description": "A port 1-65535, or a range `start-end` (at most 1000 ports)."}
FINGERPRINT = {"type": "string", "pattern": "^[0-9a-f]{12,64}$", "description": "Image fingerprint (or its first 12+ characters)."}


def _path_param(name, schema, description=""):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _form(properties, required):
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": schema},
        "application/json": {"schema": schema},
    }}


def _ok(description, properties=None):
    body = {"allOf": [{"$ref": "#/components/schemas/Result"}]}
    if properties:
        body["allOf"].append({"type": "object", "properties": properties})
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _errors(*codes):
    texts = {
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
    return {str(code): {"description": texts[code], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code in codes}


def _operation(summary, responses, parameters=(), body=None, description=""):
    operation = {"summary": summary, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = list(parameters)
    if body:
        operation["requestBody"] = body
    return operation


NAME_PARAM = _path_param("name", NAME, "Container name")
RULE = {"type": "object", "properties": {
    "id": {"type": "integer"}, "container_name": {"type": "string"}, "host_port": {"type": "integer"},
    "host_port_end": {"type": "integer"}, "container_port": {"type": "integer"},
    "container_port_end": {"type": "integer"}, "protocol": {"type": "string", "enum": ["tcp", "udp"]},
    "container_ip": {"type": "string"}, "ip_at_creation": {"type": "string"}, "created_at": {"type": "string"},
}}


def build_spec():
    paths = {
        "/container/create": {"post": _operation(
            "Create and start a container", {
                "200": _ok("Created and Running", {
                    "name": {"type": "string"}, "container_status": {"type": "string"},
                    "ip": {"type": ["string", "null"]},
                    "password": {"type": "string", "description": (
                        "Only when neither `password` nor `ssh_key` was given and the image has chpasswd: the "
                        "generated root password, shown this once (never logged or stored).")}}),
                **_errors(400, 401, 409, 413, 500, 503, 504)},
            body=_form({
                "name": NAME,
                "image": {"type": "string", "maxLength": 255,
                          "description": "Local alias, fingerprint, or `remote:alias` (e.g. `images:debian/12`)."},
                "password": {"type": "string", "minLength": 6, "maxLength": 128,
                             "description": "Optional root password (one line), fed to chpasswd on its stdin."},
                "ssh_key": {"type": "string", "maxLength": 32768, "description": (
                    "Optional OpenSSH public keys, one a line (`ssh-ed25519 AAAA... comment`; ssh-ed25519, "
                    "ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-*), written to /root/.ssh/authorized_keys. "
                    "Without `password` and `ssh_key`, a random password is generated and answered.")},
            }, ["name", "image"]))},
        "/container/{name}/action": {"post": _operation(
            "Start, stop, restart or delete a container", {
                "200": _ok("Done", {"container_status": {"type": "string"}, "nat_rules_removed": {"type": "integer"}}),
                **_errors(400, 401, 404, 413, 500, 503, 504)},
            parameters=[NAME_PARAM],
            body=_form({"action": {"type": "string", "enum": ["start", "stop", "restart", "delete"]}}, ["action"]),
            description="`delete` removes the container's NAT rules first (kernel and database).")},
        "/container/{name}/exec": {"post": _operation(
            "Run a command in a container", {
                "200": _ok("Ran; `status` is `error` when the exit code is not 0", {
                    "output": {"type": "string"}, "stdout": {"type": "string"}, "stderr": {"type": "string"},
                    "exit_code": {"type": "integer"},
                    "truncated": {"type": "boolean", "description": (
                        "stdout and stderr each keep their first EXEC_OUTPUT_LIMIT bytes (the rest is read "
                        "and dropped): true when either was longer.")}}),
                **_errors(400, 401, 404, 413, 429, 500, 503, 504)},
            parameters=[NAME_PARAM],
            body=_form({"command": {"type": "string", "maxLength": 16384,
                                    "description": "Split like a shell (shlex) and run without one."}}, ["command"]),
            description=("Past EXEC_TIMEOUT every process the command started in the container is killed "
                         "(504); at most EXEC_PER_CONTAINER commands run at once in one container (429)."))},
        "/container/{name}/info": {"get": _operation(
            "A container's details", {
                "200": {"description": "Live from Incus, or the last known data (`live_data_available: false`)",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "name": {"type": "string"}, "status": {"type": "string"}, "ip": {"type": ["string", "null"]},
                            "live_data_available": {"type": "boolean"}, "message": {"type": "string"}},
                            "required": ["name", "status", "live_data_available", "message"]}}}},
                **_errors(400, 401, 404, 503)},
            parameters=[NAME_PARAM])},
        "/container/{name}/password": {"post": _operation(
            "Set root's password in a running container", {
                "200": _ok("Changed"), **_errors(400, 401, 404, 413, 429, 500, 503, 504)},
            parameters=[NAME_PARAM],
            body=_form({"password": {"type": "string", "minLength": 6, "maxLength": 128}}, ["password"]),
            description="chpasswd reads `root:<password>` on its stdin: the password is on no command line.")},
        "/container/{name}/add_nat_rule": {"post": _operation(
            "Forward a host port (or range) to the container", {
                "200": _ok("Added (`warning` when exactly this rule existed)",
                           {"rule_id": {"type": "integer"}, "rule": RULE}),
                **_errors(400, 401, 404, 409, 413, 500, 503)},
            parameters=[NAME_PARAM],
            body=_form({"host_port": PORTS, "container_port": PORTS,
                        "protocol": {"type": "string", "enum": ["tcp", "udp"]}},
                       ["host_port", "container_port", "protocol"]))},
        "/container/{name}/nat_rules": {"get": _operation(
            "The container's NAT rules", {
                "200": _ok("The rules", {"rules": {"type": "array", "items": RULE}}), **_errors(400, 401)},
            parameters=[NAME_PARAM])},
        "/container/nat_rule/{rule_id}": {"delete": _operation(
            "Delete a NAT rule", {
                "200": _ok("Deleted (`warning` when the kernel had already lost it)", {"rule": RULE}),
                **_errors(401, 404, 500)},
            parameters=[_path_param("rule_id", {"type": "integer", "minimum": 1, "maximum": 999999999999999999},
                                    "ASCII digits, at most 18; anything else matches no route (404)")])},
        "/images": {"get": _operation(
            "The local images", {"200": _ok("The images", {"images": {"type": "array", "items": {"type": "object"}}}),
                                 **_errors(401, 503)})},
        "/images/{fingerprint}": {"delete": _operation(
            "Delete an image (refused while a container uses it)", {
                "200": _ok("Deleted"), **_errors(400, 401, 404, 409, 500, 503)},
            parameters=[_path_param("fingerprint", FINGERPRINT)])},
        "/images/import": {"post": _operation(
            "Import an image from a remote (remote:alias)", {
                "200": _ok("Imported"), "202": _ok("Started: poll /images/operations/{operation}"),
                **_errors(400, 401, 409, 413, 502, 503)},
            body=_form({"image": {"type": "string", "maxLength": 255}, "alias": {"type": "string"}}, ["image"]))},
        "/images/operations/{operation_id}": {"get": _operation(
            "Progress of an image import", {"200": _ok("State and progress"), **_errors(400, 401, 404, 503)},
            parameters=[_path_param("operation_id", {"type": "string"})])},
        "/images/{fingerprint}/alias": {"post": _operation(
            "Add an alias to an image", {"200": _ok("Added"), **_errors(400, 401, 404, 409, 413, 500, 503)},
            parameters=[_path_param("fingerprint", FINGERPRINT)],
            body=_form({"alias": {"type": "string"}, "description": {"type": "string"}}, ["alias"]))},
        "/images/alias/{alias}": {"delete": _operation(
            "Remove an image alias", {"200": _ok("Removed"), **_errors(400, 401, 404, 500, 503)},
            parameters=[_path_param("alias", {"type": "string"})])},
        "/audit_log": {"get": _operation(
            "The audit log, newest first", {
                "200": _ok("Entries", {"entries": {"type": "array", "items": {"type": "object"}}}),
                **_errors(400, 401)},
            parameters=[
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                 "description": "Entries to answer (default 100)."},
                {"name": "target", "in": "query", "schema": {"type": "string"}},
                {"name": "before_id", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                               "maximum": 9223372036854775807},
                 "description": "Only entries older than this id (the next page)."},
            ],
            description=("`limit` and `before_id` are ASCII digits only: a sign, spaces, an exponent, other "
                         "scripts' digits or a value out of range answer 400 naming the parameter. Entries of "
                         "actor `anonymous` (failed authentication) are capped at AUDIT_ANONYMOUS_KEEP; the "
                         "others are kept AUDIT_KEEP_DAYS days."))},
    }
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
