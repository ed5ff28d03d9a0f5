"""OpenTelemetry: one tracer provider per process and W3C trace context in Kafka headers.

A dataset's journey is one trace: the publisher injects ``traceparent`` into
the message headers, each consumer continues the trace from them.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from genomebus.infra.settings import Settings

PRODUCER = trace.SpanKind.PRODUCER
CONSUMER = trace.SpanKind.CONSUMER

_configured = False


def setup(settings: Settings, service: str) -> None:
    """Install the tracer provider once; exporters are chosen by ``otel_exporter``."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({
        "service.name": f"genomebus-{service}", "service.namespace": "genomebus", "genomebus.node": settings.node_id,
    }))
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
