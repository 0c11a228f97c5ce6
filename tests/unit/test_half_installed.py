"""A clone where the install step did not run (issue 18, point 9): without xterm.js under
static/vendor the console page says what to run (503), never a terminal stuck on "Connecting…", and
a one-time link is not spent by it. The certificate is made at start: tests/unit/test_serving.py."""
import pytest

from incus_api.web.dashboard.console import FETCH_COMMAND, TERMINAL_FILES, missing_terminal_files
from tests.unit.test_security import admin, login  # noqa: F401 - the fixture, and the login it needs

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def bare_static(app, tmp_path):
    (tmp_path / "console.js").write_text("")
    app.static_folder = str(tmp_path)
    return tmp_path


def test_the_console_page_says_what_to_run_when_xterm_is_missing(app, admin, bare_static):  # noqa: F811
    client = app.test_client()
    login(client)
    page = client.get("/container/web1/console", headers=ENGLISH)
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and FETCH_COMMAND in text and "xterm.js" in text
    assert "data-socket-url" not in text and "Connecting" not in text


def test_a_one_time_link_is_not_spent_while_xterm_is_missing(app, bare_static):
    page = app.test_client().get("/console/" + "a" * 43, headers=ENGLISH)
    # Checked before the link is looked up: an unknown link would be 404 otherwise.
    assert page.status_code == 503 and FETCH_COMMAND in page.get_data(as_text=True)


def test_the_files_are_looked_for_where_the_page_loads_them(app, tmp_path):
    assert missing_terminal_files(tmp_path) == list(TERMINAL_FILES)
    assert missing_terminal_files(app.static_folder) == []  # tests/run.sh fetched them
