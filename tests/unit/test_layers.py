"""Blueprints parse, call a service and shape the answer: they reach no adapter (Incus, the kernel's
tables, the database) directly, so the dashboard and the API share one service path."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "incus_api"
BLUEPRINT_MODULES = sorted([*PACKAGE.glob("web/api/*.py"), *PACKAGE.glob("web/dashboard/*.py")])
ADAPTERS = {"incus", "incus_exec", "incus_console", "nat", "db", "dhcp_leases", "host_sockets", "traffic"}
# What ``current_app.extensions["incus_api"]`` holds besides the services: the adapters.
ADAPTER_ATTRIBUTES = {"incus", "nat", "db"}


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 3:  # from ..x import y
            yield (node.module or "").split(".")[0], [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], []


@pytest.mark.parametrize("path", BLUEPRINT_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_blueprint_reaches_no_adapter(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for module, names in imported_modules(tree):
        assert module not in ADAPTERS, f"{path.name} imports the adapter {module}"
        assert not (module == "" and ADAPTERS & set(names)), f"{path.name} imports an adapter: {names}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ADAPTER_ATTRIBUTES:
            target = ast.unparse(node.value)
            assert "extensions" not in target and "backend" not in target, \
                f"{path.name}:{node.lineno} reaches the adapter {ast.unparse(node)}"


def test_the_check_sees_every_blueprint_module():
    assert {p.parent.name for p in BLUEPRINT_MODULES} == {"api", "dashboard"} and len(BLUEPRINT_MODULES) > 8
