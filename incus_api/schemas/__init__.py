"""Each JSON route's contract, declared once: its parameters (where they come from, how they are
parsed, their OpenAPI schema), its answers, its error codes and who may call it. ``route()``
registers the Flask view, parses and validates the request into keyword arguments before the view
runs, and records the declaration from which ``apidocs`` builds ``/openapi.json``. The API's routes
and the customer panel's JSON routes (``/customer/...``, the blueprint's ``url_prefix`` is part of
the declared rule) are declared alike; a route's ``security`` says which of the description's
security schemes it takes (none given: the API's ``X-API-Hash``).

Why our own few lines rather than marshmallow/flask-smorest or pydantic/spectree: the seed's
contract is form fields whose values are all text, answered with ``{"status", "message"}`` errors
whose messages are translated domain errors (``BadInput``); the parsers in ``incus_api.parse`` already
give those. A schema library would parse a second time and need its errors mapped back; here a
parameter is one ``Param`` that both validates and describes itself. Its schema's bounds and
patterns are the parser's own constants (``anchored`` turns a parser's regex into a pattern), never
a copy of their numbers.
"""
import functools
from dataclasses import dataclass, field

from flask import request

from ..exceptions import BadInput
from ..i18n import N_

ROUTES = []  # every declared route, in declaration order


def anchored(regex):
    """A parser's compiled regex (which it ``fullmatch``-es) as a JSON-schema ``pattern``."""
    return f"^{regex.pattern}$"


@dataclass(frozen=True)
class Param:
    """One request parameter. ``parse`` turns its text into a value or raises ``BadInput``; an
    optional parameter that is absent or blank is ``default`` without being parsed."""

    name: str
    parse: callable
    schema: dict
    where: str = "form"  # form | query | path
    required: bool = False
    default: object = None
    description: str = ""

    def openapi_schema(self):
        schema = dict(self.schema)
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # Flask's, e.g. /container/<name>/info
    summary: str
    params: tuple
    answer: dict = field(default_factory=dict)  # 200's fields beside status and message
    errors: tuple = (400, 401)
    description: str = ""
    answer_schema: dict = None  # a whole 200 body, for answers without status/message
    extra_answers: dict = field(default_factory=dict)  # e.g. {202: ("Started", {...fields})}
    security: tuple = None  # the security schemes it needs, all together; None: the API's (X-API-Hash)
    redirect: str = ""  # where it redirects (302) on success, instead of a 200 JSON answer
    accepted: bool = False  # answers 202 (started; the work goes on in the background) instead of 200

    @property
    def path(self):
        """The OpenAPI path: ``<name>`` and ``<int:rule_id>`` become ``{name}``, ``{rule_id}``."""
        parts = []
        for part in self.rule.split("/"):
            if part.startswith("<") and part.endswith(">"):
                part = "{" + part[1:-1].rpartition(":")[2] + "}"
            parts.append(part)
        return "/".join(parts)


def form_fields():
    """Form fields (the seed's contract); a JSON object body is accepted too, its values as text."""
    if request.form:
        return request.form
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}
    fields = {}
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadInput(N_("The field '{field}' must be a string or a number"), field=str(key)[:40])
        fields[key] = str(value)
    return fields


def parse_params(params, path_values):
    """``{name: value}`` for the view, every parameter parsed; the first bad one raises ``BadInput``."""
    form = None
    values = {}
    for param in params:
        if param.where == "path":
            raw = path_values.get(param.name)
        elif param.where == "query":
            raw = request.args.get(param.name)
        else:
            form = form_fields() if form is None else form
            raw = form.get(param.name)
        if raw is None or str(raw).strip() == "":
            if param.required:
                raise BadInput(N_("The field '{field}' is required"), field=param.name)
            values[param.name] = param.default
            continue
        values[param.name] = param.parse(str(raw))
    return values


def route(blueprint, method, rule, summary, params=(), **details):
    """Declare a route and register its view; the view receives the parsed parameters. ``rule`` is
    the blueprint's own (its ``url_prefix`` is added to the declared path)."""
    declared = Route(method=method, rule=(blueprint.url_prefix or "") + rule, summary=summary, params=tuple(params),
                     **details)
    ROUTES.append(declared)

    def register(view):
        @functools.wraps(view)
        def parsed_view(**path_values):
            return view(**parse_params(declared.params, path_values))

        blueprint.add_url_rule(rule, view_func=parsed_view, methods=[method])
        return view

    return register
