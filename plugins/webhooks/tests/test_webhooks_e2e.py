"""Through the whole host: a credit reaches the receiver as a contact update and an event, and
an event whose answer was lost is sent again under the same webhook-id."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pointbridge_webhooks.receiver import SECRET, Receiver, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.lost import LosesAnswers


class LosesTheEventsAnswer(LosesAnswers):
    """The receiver processes the credit event; pointbridge never hears back."""

    def _loses(self, environ: dict[str, Any]) -> bool:
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        return b'"credit-changed"' in body and super()._loses(environ)


def test_a_lost_event_answer_is_redelivered_under_the_same_id(
    tmp_path: Path, database_url: str
) -> None:
    receiver = Receiver()
    lossy = LosesTheEventsAnswer(create_app(receiver), "POST", "/hook", times=1)
    with FakeServer(lossy) as endpoint, Pointbridge(tmp_path, database_url=database_url) as pb:
        pb.add_integration("hooks", "webhooks", {"url": endpoint.url + "/hook", "secret": SECRET})
        customer = pb.create_customer("jana@example.com")
        pb.transaction(customer["id"], 120, "order")
        pb.deliver()
        assert pb.pending() == pb.dead() == 0

    credits = receiver.of_type("credit-changed")
    assert [m["data"] for m in credits] == 2 * [
        {
            "customer_id": customer["id"],
            "email": "jana@example.com",
            "points": 120,
            "balance": 120,
            "reason": "order",
        }
    ]
    # Received twice under one id: the receiver can deduplicate the event.
    assert credits[0]["id"] == credits[1]["id"]
    contacts = receiver.of_type("contact.updated")
    assert contacts[-1]["data"]["points"] == 120
    assert len({m["id"] for m in contacts}) == len(contacts)
