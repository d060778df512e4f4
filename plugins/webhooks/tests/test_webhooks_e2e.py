"""Through the whole host: a credit reaches the receiver as a contact update and an event, and
an answer lost on the way is sent again under the same webhook-id."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pointbridge_webhooks.receiver import SECRET, Receiver, create_app

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.lost import LosesAnswers


def test_a_lost_answer_is_redelivered_under_the_same_id(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    # The receiver processes the first message after install; pointbridge never hears back.
    lossy = LosesAnswers(create_app(receiver), "POST", "/hook", times=2)
    with FakeServer(lossy) as endpoint, Pointbridge(tmp_path, database_url=database_url) as pb:
        lossy.left = 0  # let install's ping through
        pb.add_integration("hooks", "webhooks", {"url": endpoint.url + "/hook", "secret": SECRET})
        lossy.left = 1
        customer = pb.create_customer("jana@example.com")
        pb.transaction(customer["id"], 120, "order")
        pb.deliver()
        assert pb.pending() == pb.dead() == 0

    by_id = {m["id"]: m for m in receiver.messages}
    [contact] = [m for m in by_id.values() if m["type"] == "contact.updated"]
    [credit] = [m for m in by_id.values() if m["type"] == "credit-changed"]
    assert contact["data"]["points"] == 120
    assert credit["data"] == {
        "customer_id": customer["id"],
        "email": "jana@example.com",
        "points": 120,
        "balance": 120,
        "reason": "order",
    }
    # Whichever message lost its answer arrived twice, under one id: the receiver can dedupe.
    repeated = [i for i, n in Counter(receiver.ids).items() if n > 1]
    assert len(repeated) == 1 and repeated[0] in (contact["id"], credit["id"])
