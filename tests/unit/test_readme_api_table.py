"""The README's API tables follow the routes' declarations: every declared route has a row (the
main table is in Chinese and in English, the images table is bilingual), no row names a route that
does not exist, and a row's error codes are the ones the route declares (413, "body too large", is
common to every form route and left out)."""
import re
from pathlib import Path

from incus_api.schemas import ROUTES
from incus_api.web.apidocs.spec import build_spec

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE)` \| `([^`]+)` \|(.*)\|\s*$")
COMMON = {413}


def normalised(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


def table_rows(text):
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            method, path, rest = match.groups()
            errors_cell = rest.rsplit("|", 1)[-1]
            codes = {int(code) for code in re.findall(r"`(\d{3})`", errors_cell)}
            rows.setdefault((method, normalised(path)), []).append(codes)
    return rows


def test_every_route_has_a_row_with_its_error_codes():
    build_spec()  # imports the blueprint, which declares the routes
    declared = {(route.method, normalised(route.path)): set(route.errors) - COMMON for route in ROUTES}
    rows = table_rows(README.read_text(encoding="utf-8"))
    assert set(rows) == set(declared), (set(rows) ^ set(declared))
    wrong = [(key, sorted(codes), sorted(declared[key]))
             for key, codes_per_row in rows.items() for codes in codes_per_row if codes - COMMON != declared[key]]
    assert not wrong, wrong
