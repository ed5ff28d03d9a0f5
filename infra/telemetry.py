"""OpenTelemetry: one tracer provider per process and W3C trace context in Kafka headers.

A dataset's journey is one trace: the publisher injects ``traceparent`` into
the message headers, each consumer continues the trace from them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from genomebus.infra.settings import Settings

PRODUCER = trace.SpanKind.PRODUCER
CONSUMER = trace.SpanKind.CONSUMER

_configured = False


class _OwnRandomIds(IdGenerator):
    """Trace and span ids from a generator of their own, not the process-wide ``random`` module.

    The SDK's default draws from ``random``, whose state tests and libraries seed and inspect
    (Hypothesis refuses a test whose strategies' ``random`` state moves under it, which a gateway
    serving requests in the test's process did).
    """

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(32))

    def generate_span_id(self) -> int:
        while (span_id := self._random.getrandbits(64)) == trace.INVALID_SPAN_ID:
            pass
        return span_id

    def generate_trace_id(self) -> int:
        while (trace_id := self._random.getrandbits(128)) == trace.INVALID_TRACE_ID:
            pass
        return trace_id


def setup(settings: Settings, service: str) -> None:
    """Install the tracer provider once; exporters are chosen by ``otel_exporter``."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({
        "service.name": f"genomebus-{service}", "service.namespace": "genomebus", "genomebus.node": settings.node_id,
    }), id_generator=_OwnRandomIds())
    if settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # optional extra

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("genomebus")


def inject_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> context.Context:
    carrier = {k: v.decode(errors="replace") for k, v in (headers or ())}
    return propagate.extract(carrier)
