"""The runs page over HTTP, posting what the browser posts: keeping more runs than the page shows
never makes a request bigger, since the runs stay on the server and the window holds their keys
(runs used to travel back in every request, and the 7th large run was refused with HTTP 413)."""

from dash_client import Page

from dashboard.runs import form_values, read_example
from sim.scenario import scenario_from_dict


def headers(node) -> list:
    """The texts of the table headers in a serialised layout, in order."""
    if isinstance(node, list):
        return [h for child in node for h in headers(child)]
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Th":
        return [node["props"]["children"]]
    return headers(node.get("props", {}).get("children"))


def test_seven_large_runs_kept_never_grow_a_request(dashboard_app, pages, settings, jobs, session):
    data = read_example(settings.examples_dir, "chat-h100")
    form = form_values(scenario_from_dict(data))
    form[7] = 1200  # requests: enough to fill a kept run's latency and timeseries caps (160 KB)
    client = dashboard_app.server.test_client()

    def post_json(url: str, body: str) -> tuple[int, dict]:
        reply = client.post(url, data=body, content_type="application/json")
        return reply.status_code, reply.get_json()

    page = Page(
        lambda url: client.get(url).get_json(),
        post_json,
        {
            "session.data": session,
            "runs-source.data": {"label": "chat-h100", "data": data},
            "runs-kept.data": [],
            **{f"{i}.value": v for i, v in zip(pages["runs"].FORM_IDS, form, strict=True)},
        },
    )
    keys, ticks = [], 0
    for clicks in range(1, 8):
        page.values["runs-run.n_clicks"] = clicks
        page.post("runs-job.data...runs-run-error")
        keys.append(page.values["runs-job.data"]["key"])
        while page.values["runs-job.data"]:
            ticks += 1
            page.values["runs-poll.n_intervals"] = ticks
            page.post("runs-kept.data...runs-progress.value")
        assert page.values["runs-run-error.children"] is None
        shown = page.post("runs-compare.children")
    kept = page.values["runs-kept.data"]
    assert [k["label"].split()[0] for k in kept] == ["#2", "#3", "#4", "#5", "#6", "#7"]
    assert [k["key"] for k in kept] == keys[1:] and jobs.result(keys[0]) is None  # #1's answer is gone
    assert headers(shown["runs-compare"]["children"]) == ["", *(k["label"] for k in kept)]
    assert max(page.sizes) < 16_000 < dashboard_app.server.config["MAX_CONTENT_LENGTH"]
