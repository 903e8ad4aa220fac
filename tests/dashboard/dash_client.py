"""The browser's side of a Dash page, for tests that talk to the app over HTTP: the components'
values, and the requests dash-renderer posts to update them (the same format, checked against
requests captured from Chromium)."""

import json
from collections.abc import Callable
from typing import Any


class Page:
    """`get_json(path)` and `post_json(path, body) -> (status, json)` reach the app; `values` maps
    "id.property" to what the browser holds, and each answer updates it as dash-renderer does."""

    def __init__(
        self,
        get_json: Callable[[str], Any],
        post_json: Callable[[str, str], tuple[int, Any]],
        values: dict,
    ):
        self.post_json, self.values, self.sizes = post_json, values, []
        self.deps = get_json("/_dash-dependencies")

    def post(self, output_part: str) -> dict:
        """Fire the callback whose outputs include `output_part`; its answer, by id and property."""
        spec = next(d for d in self.deps if output_part in d["output"])
        outputs = []
        for part in spec["output"].strip(".").split("..."):
            ident, prop = part.rsplit(".", 1)
            outputs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})

        def fill(items):
            return [{**i, "value": self.values.get(f"{i['id']}.{i['property']}")} for i in items]

        inputs = fill(spec["inputs"])
        body = json.dumps(
            {
                "output": spec["output"],
                "outputs": outputs if spec["output"].startswith("..") else outputs[0],
                "inputs": inputs,
                "state": fill(spec["state"]),
                "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
            }
        )
        self.sizes.append(len(body))
        status, reply = self.post_json("/_dash-update-component", body)
        assert status == 200, status
        answer = reply["response"]
        for ident, props in answer.items():
            self.values |= {f"{ident}.{prop}": value for prop, value in props.items()}
        return answer
