"""The README's API tables follow the routes' declarations.

- Every declared route has exactly one row in the Chinese table and one in the English table (the
  images table is bilingual: its rows count for both), and no row names a route that does not exist.
- A row's error codes are the ones the route declares (413, "body too large", is common to every
  form route and left out).
- A row names exactly the parameters its route declares, none missing and none extra: the path's
  parameters in the path (``/container/{name}/exec``, by their declared names), the others (form
  and query) in the parameters cell. There a parameter is a name in backticks outside parentheses;
  what a row says about a parameter (its values, its bounds, `auto`, `tcp`/`udp`) goes in
  parentheses after it, ASCII or full-width.
- A row's success codes are the route's: ``200`` (``302`` for a route that redirects) and its extra answers.
- The customer panel's routes (declared with the customer's session as their security) have a table of
  their own in each language, in the customer panel's section, and that table holds nothing else.
"""
import re
from pathlib import Path

import pytest

from incus_api.schemas import ROUTES
from incus_api.web.apidocs.spec import build_spec
from incus_api.web.customer.views import CUSTOMER_SESSION

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE)` \| `([^`]+)` \|(.*)\|\s*$")
HEADER = re.compile(r"^\|(.*)\|\s*$")
COMMON = {413}
LANGUAGES = ("zh", "en")
CUSTOMER_SECTIONS = {"zh": "#### 客户面板", "en": "#### The customer's panel"}  # where the customer's table stands

build_spec()  # imports the blueprint, which declares the routes


def normalised(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


def path_names(path):
    return re.findall(r"\{([^}]+)\}", path)


def languages_of(header):
    """The languages of a table, from its header: 方法 (zh), Method (en), or both (bilingual)."""
    return {language for language, word in (("zh", "方法"), ("en", "Method")) if word in header}


def outside_parentheses(text):
    """``text`` without what stands in parentheses (ASCII or full-width, nested or not)."""
    kept, depth = [], 0
    for char in text:
        if char in "(（":
            depth += 1
        elif char in ")）":
            depth = max(depth - 1, 0)
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def parameter_names(cell):
    return re.findall(r"`([^`]+)`", outside_parentheses(cell))


def table_rows(text):
    """``[(languages, method, path, params cell, error codes, success codes, table)]`` for every route row
    of every table; ``table`` is ``(its header's line number, the heading above it)``."""
    rows, languages, columns, table, heading, in_code = [], set(), 0, None, "", False
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = ROW.match(line)
        if line.startswith("```"):
            in_code = not in_code
        elif in_code:
            continue
        elif match:
            method, path, rest = match.groups()
            cells = rest.split("|")
            assert len(cells) + 2 == columns, f"README line {number + 1}: {len(cells) + 2} cells, the table has {columns}"
            codes = {int(code) for code in re.findall(r"`(\d{3})`", cells[-1])}
            success = {int(code) for code in re.findall(r"`(\d{3})`", cells[-2])}
            rows.append((languages, method, path, cells[1], codes, success, table))
        elif HEADER.match(line) and number + 1 < len(lines) and lines[number + 1].startswith("| :--"):
            languages, columns = languages_of(line), len(line.strip().strip("|").split("|"))
            table = (number + 1, heading)
        elif line.startswith("#"):
            heading = line.strip()
    return rows


ROWS = table_rows(README.read_text(encoding="utf-8"))


def declared():
    return {(route.method, normalised(route.path)): route for route in ROUTES}


def test_every_route_has_one_row_in_each_language_and_no_row_names_another_route():
    routes = declared()
    for language in LANGUAGES:
        keys = [(method, normalised(path)) for languages, method, path, *_ in ROWS if language in languages]
        assert sorted(keys) == sorted(routes), (language, set(keys) ^ set(routes),
                                                sorted({key for key in keys if keys.count(key) > 1}))


def test_every_row_has_its_routes_error_codes():
    routes = declared()
    wrong = [(method, path, sorted(codes - COMMON), sorted(set(routes[method, normalised(path)].errors) - COMMON))
             for _, method, path, _, codes, *_ in ROWS
             if (method, normalised(path)) in routes and codes - COMMON != set(routes[method, normalised(path)].errors) - COMMON]
    assert not wrong, wrong


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{'+'.join(sorted(row[0]))} {row[1]} {row[2]}")
def test_every_row_names_exactly_its_routes_parameters(row):
    _, method, path, cell, *_ = row
    route = declared().get((method, normalised(path)))
    if route is None:
        pytest.skip("no such route (the test above fails)")
    in_path = [param.name for param in route.params if param.where == "path"]
    assert path_names(path) == path_names(route.path) and sorted(path_names(path)) == sorted(in_path), (
        f"the README writes {path}, the route {route.path}")
    named = parameter_names(cell)
    expected = [param.name for param in route.params if param.where != "path"]
    assert sorted(set(named)) == sorted(expected) and len(named) == len(set(named)), {
        "missing": sorted(set(expected) - set(named)), "extra": sorted(set(named) - set(expected)),
        "twice": sorted({name for name in named if named.count(name) > 1})}


def test_every_row_has_its_routes_success_codes():
    routes = declared()
    wrong = []
    for _, method, path, _, _, success, _ in ROWS:
        route = routes.get((method, normalised(path)))
        if route is not None and success != {302 if route.redirect else 202 if route.accepted else 200,
                                             *route.extra_answers}:
            wrong.append((method, path, sorted(success), route.redirect, sorted(route.extra_answers)))
    assert not wrong, wrong


def is_customers(route):
    return CUSTOMER_SESSION in (route.security or ())


def test_the_customer_panels_routes_have_one_table_of_their_own_in_each_language():
    routes = declared()
    customers = {key for key, route in routes.items() if is_customers(route)}
    assert len(customers) >= 10 and all(path.startswith("/customer/") for _, path in customers), customers
    for language in LANGUAGES:
        rows = [(method, normalised(path), table) for languages, method, path, *_, table in ROWS if language in languages]
        tables = {table for method, path, table in rows if (method, path) in customers}
        assert len(tables) == 1, (language, sorted(tables))
        (table,) = tables
        assert table[1] == CUSTOMER_SECTIONS[language], (language, table)
        assert sorted((method, path) for method, path, in_table in rows if in_table == table) == sorted(customers), (
            language, "the customer's table holds every customer route and nothing else")
