"""The layout is the architecture, and this test holds it: the web side parses, calls a service and
shapes the answer, reaching no adapter; services import nothing of Flask or the web side; the
adapters (Incus, the kernel's tables, the host, the store) import nothing of Flask, the services,
the web side or each other; SQL is written in the store only."""
import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "incus_api"
ADAPTERS = ("incus", "nat", "traffic", "host", "store")
FLASK = ("flask", "flask_login", "flask_babel", "flask_wtf", "flask_sock", "simple_websocket")
# What ``current_app.extensions["incus_api"]`` holds besides the services: the adapters.
ADAPTER_ATTRIBUTES = {"incus", "nat", "db"}
PROBES = {}  # path -> a text to check instead of the file's (the test of the checks themselves)
SQL = re.compile(r"\b(SELECT\s+\S.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b|\.execute(many)?\(")


def modules(*parts):
    return sorted(PACKAGE.joinpath(*parts).rglob("*.py"))


def name_of(path):
    return ".".join(("incus_api", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def source(path):
    return PROBES.get(path) or path.read_text()


def imports(path):
    """Every module ``path`` imports, absolute (``incus_api.x.y``); for ``from pkg import name``,
    both ``pkg`` and ``pkg.name`` (a name may be a module)."""
    package = name_of(path) if path.name == "__init__.py" else name_of(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(source(path), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield module, node.lineno
            for alias in node.names:
                yield f"{module}.{alias.name}", node.lineno


def area(module):
    """The top-level area of an ``incus_api`` module (``web``, ``service``, ``store``...), or None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "incus_api" and len(parts) > 1 else None


def project_root_names(module):
    """``incus_api.X`` where X is not a module: a name taken from the package's ``__init__``."""
    parts = module.split(".")
    if parts[0] != "incus_api" or len(parts) != 2:
        return False
    return not (PACKAGE / f"{parts[1]}.py").exists() and not (PACKAGE / parts[1]).is_dir()


@pytest.mark.parametrize("path", modules("web"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_web_side_reaches_no_adapter(path):
    for module, line in imports(path):
        assert area(module) not in ADAPTERS, f"{path.name}:{line} imports the adapter {module}"
        assert not project_root_names(module), f"{path.name}:{line} takes {module} from the package's __init__"
    for node in ast.walk(ast.parse(source(path))):
        if isinstance(node, ast.Attribute) and node.attr in ADAPTER_ATTRIBUTES:
            target = ast.unparse(node.value)
            assert "extensions" not in target and "backend" not in target, \
                f"{path.name}:{node.lineno} reaches the adapter {ast.unparse(node)}"


@pytest.mark.parametrize("path", modules("service"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_service_imports_nothing_of_flask_or_the_web_side(path):
    for module, line in imports(path):
        assert module.split(".")[0] not in FLASK, f"{path.name}:{line} imports {module}"
        assert area(module) != "web", f"{path.name}:{line} imports the web side: {module}"


@pytest.mark.parametrize("path", [p for adapter in ADAPTERS for p in modules(adapter)],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_an_adapter_imports_no_flask_no_service_and_no_other_adapter(path):
    own = path.relative_to(PACKAGE).parts[0]
    for module, line in imports(path):
        assert module.split(".")[0] not in FLASK, f"{path.name}:{line} imports {module}"
        assert area(module) not in ("web", "service"), f"{path.name}:{line} imports {module}"
        assert area(module) in (None, own) or area(module) not in ADAPTERS, \
            f"{own}/{path.name}:{line} imports another adapter: {module}"


@pytest.mark.parametrize("path", [p for p in modules() if p.relative_to(PACKAGE).parts[0] != "store"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_sql_is_written_in_the_store_only(path):
    for number, line in enumerate(source(path).splitlines(), 1):
        assert not SQL.search(line), f"{path.relative_to(PACKAGE)}:{number} holds SQL: {line.strip()}"


def test_the_checks_see_every_area():
    assert {p.relative_to(PACKAGE).parts[1] for p in modules("web") if len(p.relative_to(PACKAGE).parts) > 2} \
        >= {"api", "dashboard", "apidocs"}
    assert all(modules(adapter) for adapter in ADAPTERS) and len(modules("service")) > 15


def test_the_checks_catch_what_they_look_for():
    """Each kind of wrong arrow, added to a module's text, is caught."""
    cases = [
        ("web/dashboard/views.py", "from incus_api.incus.client import Incus\n", test_the_web_side_reaches_no_adapter),
        ("web/dashboard/views.py", "from ...store import users\n", test_the_web_side_reaches_no_adapter),
        ("web/dashboard/views.py", "from ... import LANGUAGES\n", test_the_web_side_reaches_no_adapter),
        ("web/api/containers.py", "x = current_app.extensions['incus_api'].db\n", test_the_web_side_reaches_no_adapter),
        ("service/accounts.py", "from ..web.auth import User\n", test_a_service_imports_nothing_of_flask_or_the_web_side),
        ("service/accounts.py", "from flask import request\n", test_a_service_imports_nothing_of_flask_or_the_web_side),
        ("store/users.py", "from ..service import audit\n", test_an_adapter_imports_no_flask_no_service_and_no_other_adapter),
        ("host/route.py", "from ..incus import client\n", test_an_adapter_imports_no_flask_no_service_and_no_other_adapter),
        ("service/accounts.py", 'X = "SELECT id FROM users"\n', test_sql_is_written_in_the_store_only),
    ]
    for module, line, check in cases:
        path = PACKAGE / module
        check(path)  # the module itself passes
        PROBES[path] = path.read_text() + line
        try:
            with pytest.raises(AssertionError):
                check(path)
        finally:
            del PROBES[path]
