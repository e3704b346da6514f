"""The webhook against a local receiver that checks the signature as docs say; the JSONL file."""

import json
import pathlib
import threading
import time

import pytest

from tests.tfx_pipeline.notifications.conftest import make_config, webhook
from tests.webhook_receiver import SECRET, Receiver, documented_verifier
from tfx_pipeline.notifications import events, sinks


def sink_for(tmp_path, url: str, **settings):
    config = make_config(tmp_path, {"chat": webhook(url, **settings)}, {"pushed": ["chat"]})
    return config.sinks["chat"]


def body_of(title: str = "version 7 pushed (AUC 0.9340)") -> tuple[dict, bytes]:
    event = events.Event(events.PUSHED, title, {"version": 7, "auc": 0.934}, ["path: /x/7"], "r1")
    payload = events.payload(event, "taxi")
    return payload, events.encode(payload)


def deliver(sink, body: bytes, payload: dict) -> sinks.Delivery:
    return sinks.deliver(sink, body, payload["event"], payload["id"], stop=threading.Event())


def test_a_delivery_is_signed_json_the_documented_check_accepts(tmp_path, receiver):
    payload, body = body_of()
    delivery = deliver(sink_for(tmp_path, receiver.url), body, payload)
    assert delivery == sinks.Delivery(True, 1)
    (request,) = receiver.requests
    assert request["valid"]
    assert request["body"] == body
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert (headers[sinks.EVENT_HEADER], headers[sinks.ID_HEADER]) == ("pushed", payload["id"])
    received = json.loads(body)
    assert received["text"] == "taxi: version 7 pushed (AUC 0.9340)\npath: /x/7"
    assert (received["event"], received["pipeline"], received["run_id"]) == ("pushed", "taxi", "r1")
    assert received["details"] == {"version": 7, "auc": 0.934}


def test_the_documented_check_refuses_a_wrong_secret_a_changed_body_and_an_old_timestamp():
    verify = documented_verifier()
    _, body = body_of()
    now = time.time()
    headers = sinks.signed_headers(SECRET.encode(), body, "pushed", "id", now)
    assert verify(SECRET.encode(), headers, body)
    assert not verify(b"another secret", headers, body)
    assert not verify(SECRET.encode(), headers, body.replace(b"AUC", b"auc"))
    old = sinks.signed_headers(SECRET.encode(), body, "pushed", "id", now - 3600)
    assert not verify(SECRET.encode(), old, body)
    # The timestamp is signed: moving it forward breaks the signature.
    replayed = {**old, sinks.TIMESTAMP_HEADER: str(int(now))}
    assert not verify(SECRET.encode(), replayed, body)


def test_5xx_and_429_are_retried_each_attempt_signed_until_accepted(tmp_path, secret_env):
    receiver = Receiver(SECRET.encode(), statuses=[503, 429])
    try:
        payload, body = body_of()
        sink = sink_for(tmp_path, receiver.url, attempts=4, backoff_seconds=0.01)
        delivery = deliver(sink, body, payload)
    finally:
        receiver.close()
    assert delivery == sinks.Delivery(True, 3)
    assert [r["valid"] for r in receiver.requests] == [True, True, True]
    assert {r["headers"][sinks.ID_HEADER] for r in receiver.requests} == {payload["id"]}


def test_out_of_attempts_reports_the_last_error(tmp_path, secret_env):
    receiver = Receiver(SECRET.encode(), statuses=[500, 502, 503])
    try:
        payload, body = body_of()
        sink = sink_for(tmp_path, receiver.url, attempts=3, backoff_seconds=0.01)
        delivery = deliver(sink, body, payload)
    finally:
        receiver.close()
    assert (delivery.delivered, delivery.attempts) == (False, 3)
    assert delivery.error.startswith("HTTP 503")
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_other_4xx_answers_are_final(tmp_path, secret_env, status):
    receiver = Receiver(SECRET.encode(), statuses=[status])
    try:
        payload, body = body_of()
        delivery = deliver(sink_for(tmp_path, receiver.url, attempts=4), body, payload)
    finally:
        receiver.close()
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.error.startswith(f"HTTP {status}")
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retried_then_given_up(tmp_path, secret_env, refused_url):
    payload, body = body_of()
    sink = sink_for(tmp_path, refused_url, attempts=3, backoff_seconds=0.01)
    delivery = deliver(sink, body, payload)
    assert (delivery.delivered, delivery.attempts) == (False, 3)
    assert "cannot connect to http://127.0.0.1:" in delivery.error
    assert "/hook" not in delivery.error  # the URL's path (Slack's secret) stays out of logs


def test_a_backoff_wait_ends_when_the_process_stops_waiting(tmp_path, secret_env, refused_url):
    payload, body = body_of()
    sink = sink_for(tmp_path, refused_url, attempts=5, backoff_seconds=60)
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    delivery = sinks.deliver(sink, body, "pushed", payload["id"], stop=stop)
    assert time.monotonic() - started < 30  # far below the first 60 s backoff
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert "the process stopped waiting" in delivery.error


def test_slack_markup_characters_are_escaped_in_text_only():
    event = events.Event(events.RUN_FAILED, "run failed: <lambda> & co", {"error": "<lambda>"})
    payload = events.payload(event, "taxi")
    assert payload["text"] == "taxi: run failed: &lt;lambda&gt; &amp; co"
    assert payload["title"] == "run failed: <lambda> & co"
    assert payload["details"] == {"error": "<lambda>"}


def test_details_become_strict_json():
    details = {"auc": float("nan"), "path": pathlib.PurePosixPath("/srv/x")}
    event = events.Event(events.PUSHED, "t", details)
    body = json.loads(events.encode(events.payload(event, "taxi")))
    assert body["details"] == {"auc": None, "path": "/srv/x"}


def test_concurrent_appends_keep_every_jsonl_line_whole(tmp_path):
    path = tmp_path / "deep" / "notifications.jsonl"
    record = {"record": "notification", "text": "x" * 3000}

    def write(writer: int) -> None:
        for number in range(50):
            sinks.append_line(path, {**record, "writer": writer, "number": number})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    assert {(r["writer"], r["number"]) for r in map(json.loads, lines)} == {
        (w, n) for w in range(8) for n in range(50)
    }
