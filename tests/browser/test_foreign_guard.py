"""The browser fixtures' own guard: a request to another host is aborted and recorded (the
``foreign_requests`` check every browser test ends with), one to the loopback goes through."""
from tests.browser.conftest import FOREIGN_URL, new_context


def test_requests_to_other_hosts_are_aborted_and_recorded(browser, live_server):
    foreign = []
    context = new_context(browser, foreign, bypass_csp=True)  # our pages' CSP would stop these fetches first
    try:
        page = context.new_page()
        page.goto(live_server + "/login")
        outside = ["http://203.0.113.9/x.js", "https://198.51.100.7:8443/y.css", "http://127.0.0.1.example/z.png"]
        answers = page.evaluate("""async (urls) => {
          const status = async (url) => { try { return (await fetch(url, {mode: 'no-cors'})).type; } catch (e) { return 'failed'; } };
          return Promise.all(urls.map(status));
        }""", [live_server + "/static/app.css", *outside])
        assert answers == ["basic", "failed", "failed", "failed"]
        assert sorted(foreign) == sorted(outside)
    finally:
        context.close()


def test_the_foreign_pattern():
    for url in ("http://127.0.0.1:5000/", "http://localhost/static/a.js", "ws://127.0.0.1:8080/console", "http://127.0.0.1"):
        assert not FOREIGN_URL.search(url), url
    for url in ("https://cdn.example.com/x.js", "http://127.0.0.1.example/", "http://localhost.example:80/", "wss://203.0.113.1/"):
        assert FOREIGN_URL.search(url), url
