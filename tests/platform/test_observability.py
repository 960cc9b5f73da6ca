"""Metrics at /metrics, the structured request log, admission gates."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from shopfront.platform.admission import AdmissionGate, Overloaded, ingestion_gate
from shopfront.platform.logs import (
    DegradedPart,
    JsonFormatter,
    RequestInfo,
    bind_request,
    configure_logging,
    mark_degraded,
)
from shopfront.platform.metrics import BreakerState, Metrics, OperationNames, metrics_of
from shopfront.testing import GraphQLCall

LIST = "query ListProducts { products(first: 2) { nodes { id } } }"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_operations_and_database_calls(
    client: httpx.AsyncClient, graphql: GraphQLCall
) -> None:
    for _ in range(3):
        assert "errors" not in await graphql(LIST)
    await graphql("query Broken { nope }")
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    ok = {"operation": "ListProducts", "type": "query", "outcome": "ok"}
    assert value(text, "shopfront_graphql_operations_total", **ok) == 3
    assert (
        value(
            text,
            "shopfront_graphql_operation_duration_seconds_count",
            operation="ListProducts",
            type="query",
        )
        == 3
    )
    rejected = {"operation": "Broken", "type": "query", "outcome": "rejected"}
    assert value(text, "shopfront_graphql_operations_total", **rejected) == 1
    assert value(text, "shopfront_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    # Each listed query made a key lookup and a read: both are `find` commands.
    finds = value(text, "shopfront_db_command_duration_seconds_count", command="find", outcome="ok")
    assert finds >= 6
    assert value(text, "shopfront_http_requests_total", route="/graphql", status="200") == 4
    assert value(text, "shopfront_database_up") == 1


async def test_every_app_has_its_own_registry(
    app: Any, client: httpx.AsyncClient, graphql: GraphQLCall
) -> None:
    await graphql(LIST)
    other = Metrics()
    assert other.registry is not app.state.metrics.registry
    assert metrics_of(app.state.runtime) is app.state.metrics
    text = other.exposition()[0].decode()
    assert (
        value(
            text,
            "shopfront_graphql_operations_total",
            operation="ListProducts",
            type="query",
            outcome="ok",
        )
        == 0
    )


def test_strategy_model_and_ingestion_metrics_for_other_modules() -> None:
    m = Metrics()
    m.record_strategy_call("recommender", "trending", 0.02)
    m.record_strategy_call("recommender", "trending", 0.5, timed_out=True)
    m.record_strategy_call("recommender", "trending", 0.01, failed=True)
    m.set_breaker_state("recommender", "trending", BreakerState.OPEN)
    m.set_model_version("ease", 3)
    m.set_model_version("ease", 4)
    m.ingestion_events.labels("accepted").inc(5)
    text = m.exposition()[0].decode()
    labels = {"kind": "recommender", "strategy": "trending"}
    assert value(text, "shopfront_strategy_calls_total", **labels) == 3
    assert value(text, "shopfront_strategy_timeouts_total", **labels) == 1
    assert value(text, "shopfront_strategy_failures_total", **labels) == 1
    assert value(text, "shopfront_strategy_breaker_state", **labels) == 2
    assert value(text, "shopfront_model_info", strategy="ease", version="4") == 1
    assert ("shopfront_model_info", (("strategy", "ease"), ("version", "3"))) not in samples(text)
    assert m.model_versions() == {"ease": "4"}
    assert value(text, "shopfront_ingestion_events_total", outcome="accepted") == 5


def test_operation_names_are_bounded() -> None:
    names = OperationNames(limit=2)
    assert names.label(None) == "anonymous"
    assert names.label("A") == "A"
    assert names.label("B") == "B"
    assert names.label("C") == "other"  # a third distinct name
    assert names.label("A") == "A"
    assert names.label("bad name; drop table") == "other"


async def test_request_log_line_names_the_key_never_the_key_itself(
    client: httpx.AsyncClient, storefront_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shopfront.request"):
        resp = await client.post(
            "/graphql",
            json={"query": LIST},
            headers={"authorization": f"Bearer {storefront_key}", "x-request-id": "abc-123"},
        )
    assert resp.headers["x-request-id"] == "abc-123"
    records = [r for r in caplog.records if r.name == "shopfront.request"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["status"] == 200
    assert line["request_id"] == "abc-123"
    assert line["operation"] == "ListProducts"
    assert line["key_name"] == "test-storefront"
    assert line["role"] == "storefront"
    assert line["duration_ms"] >= 0
    assert line["degraded"] == [] and line["error_codes"] == []
    assert storefront_key not in json.dumps(line)


def test_json_formatter_adds_request_id_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream=stream)
    try:
        log = logging.getLogger("shopfront.test")
        with bind_request(RequestInfo(request_id="rid-1")):
            mark_degraded("trending", "timeout after 100 ms", cause="timeout")
            mark_degraded("trending", "timeout after 100 ms", cause="timeout")
            log.info("hello %s", "world", extra={"operation": "Storefront"})
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        log.warning("outside")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "hello world"
    assert lines[0]["request_id"] == "rid-1"
    assert lines[0]["operation"] == "Storefront"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "shopfront.test"
    assert "ValueError: boom" in lines[1]["exc"]
    assert "request_id" not in lines[2]


def test_mark_degraded_records_each_part_and_reason_once() -> None:
    info = RequestInfo(request_id="r")
    with bind_request(info):
        mark_degraded("a", "error: KeyError", cause="error")
        mark_degraded("b", "not loaded", label="(unknown)")
        mark_degraded("a", "error: KeyError", cause="error")
        mark_degraded("a", "timeout after 5 ms", cause="timeout")
    mark_degraded("outside a request is a no-op")
    assert info.degraded == [
        DegradedPart("a", "error: KeyError", "error", "a"),
        DegradedPart("b", "not loaded", "not loaded", "(unknown)"),
        DegradedPart("a", "timeout after 5 ms", "timeout", "a"),
    ]


async def test_admission_gate_refuses_beyond_capacity_and_releases() -> None:
    metrics = Metrics()
    gate = AdmissionGate("ingestion", 10, retry_after_s=2, metrics=metrics)
    async with gate.admit(6):
        async with gate.admit(4):
            assert gate.in_flight == 10
            with pytest.raises(Overloaded) as refused:
                async with gate.admit(1):
                    pass
            assert refused.value.retry_after_s == 2
        assert gate.in_flight == 6
    assert gate.in_flight == 0
    # An oversized admission is let in when the gate is idle, never refused forever.
    async with gate.admit(50):
        with pytest.raises(Overloaded):
            gate.try_acquire(1)
    text = metrics.exposition()[0].decode()
    assert value(text, "shopfront_admission_rejected_total", gate="ingestion") == 2
    assert value(text, "shopfront_admission_in_flight", gate="ingestion") == 0
    assert value(text, "shopfront_admission_capacity", gate="ingestion") == 10


async def test_gate_failure_inside_the_block_still_releases() -> None:
    gate = AdmissionGate("ingestion", 2)
    with pytest.raises(RuntimeError):
        async with gate.admit(2):
            raise RuntimeError("write failed")
    assert gate.in_flight == 0


async def test_app_registers_an_ingestion_gate_from_settings(app: Any) -> None:
    gate = ingestion_gate(app.state.runtime)
    assert gate.capacity == app.state.runtime.settings.ingest_max_in_flight
