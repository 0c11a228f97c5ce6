"""The OpenAPI description stays in step with the code: every route of the api blueprint is
described, and every described route exists, with the same methods."""
import re


def api_routes(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_api_route_is_described_and_nothing_else(client, app):
    spec = client.get("/openapi.json").get_json()
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert described == api_routes(app)


def test_spec_is_public_and_well_formed(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["apiHash"]["name"] == "X-API-Hash"
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert operation["summary"] and "200" in operation["responses"]


def test_docs_page_uses_only_local_assets(client):
    response = client.get("/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "/container/{name}/add_nat_rule" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script>" not in html
