"""The traffic card (use against the quota, the day chart drawn as SVG by the server, the reset)
and the list's percent column, with real bytes through a forward from a network namespace."""
import re

from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.integration.conftest import test_host  # noqa: F401  (the namespace fixture)
from tests.integration.test_traffic import MB, download_through_forward


def test_traffic_card_chart_reset_and_list_percent(logged_in, make_container, api, app, test_host):  # noqa: F811
    page = logged_in
    page.set_viewport_size({"width": 1280, "height": 900})
    name = make_container()
    traffic = app.extensions["incus_api"].services.traffic
    assert api.post(f"/container/{name}/limits", data={"traffic_quota": "100MB", "traffic_action": "suspend"}
                    ).status_code == 200
    traffic.sample()
    download_through_forward(api, name, test_host, size=8 * MB)
    traffic.sample()
    used = api.get(f"/container/{name}/traffic").get_json()
    assert used["tx_bytes"] >= 8 * MB

    page.goto(f"{page.base}/containers/{name}")
    card = page.locator("#traffic")
    expect(card.locator("[data-quota]")).to_have_text("100 MB")
    expect(card.locator("[data-counted]")).to_have_text(re.compile(r"^(8|9)\.\d+ MB$"))
    expect(card.locator("meter")).to_have_attribute("value", str(round(used["counted_bytes"] * 100 / 10**8)))
    # today's out bar is the tallest, the chart has a bar pair for each day of the period
    chart = card.locator("svg[data-traffic-chart]")
    expect(chart.locator("g[data-day]")).to_have_count(len(used["days"]))
    today = next(day["date"] for day in used["days"] if day["tx_bytes"])
    height = float(chart.locator(f"g[data-day='{today}'] rect.tx").get_attribute("height"))
    assert height > 100, height
    assert card.evaluate("c => c.scrollWidth <= c.clientWidth"), "the traffic card scrolls sideways"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(SCREENSHOTS / "screenshot-traffic.png"))  # the card alone, for the README

    page.goto(f"{page.base}/")
    expect(page.locator(f"tr[data-name='{name}'] [data-traffic]")).to_have_text(f"{used['percent']:.1f}%")

    page.goto(f"{page.base}/containers/{name}")
    card.locator("[data-traffic-reset]").click()
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(card.locator("[data-counted]")).to_have_text("0 B")
    assert api.get(f"/container/{name}/traffic").get_json()["counted_bytes"] == 0
