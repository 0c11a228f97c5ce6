"""The billing modules (billing/whmcs, billing/zjmf) run under Debian's php-cli against the live
service (``service``: app.py over HTTPS, as a host runs it), each function called with the
parameters its billing system passes. ``php_call`` runs one function of a module through a
harness script (each module's harness holds the smallest stand-ins for the billing system's own
functions it calls) and returns what the function returned, as JSON."""
import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

HERE = ROOT / "tests" / "billing"


@pytest.fixture(scope="session")
def php():
    """The PHP binary with curl; tests/run.sh installs php-cli and php-curl."""
    binary = shutil.which("php")
    if binary is None:
        pytest.fail("php is missing: apt-get install php-cli php-curl (tests/run.sh does it)")
    modules = subprocess.run([binary, "-m"], capture_output=True, text=True, check=True).stdout.split()
    if "curl" not in modules:
        pytest.fail("php's curl extension is missing: apt-get install php-curl (tests/run.sh does it)")
    return binary


@pytest.fixture
def php_call(php, tmp_path):
    """``php_call(harness, function, params, state=None)``: run ``function(params)`` of the module
    the harness (a file under tests/billing) loads; ``state`` (a dict) is what the stand-ins start
    with (e.g. the billing system's database rows) and comes back changed. Returns
    ``(result, state, output)``."""

    def call(harness, function, params, state=None, timeout=180):
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"function": function, "params": params, "state": state or {}}))
        done = subprocess.run([php, str(HERE / harness), str(request)], capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        return answer["result"], answer["state"], done.stderr
    return call
