"""OpenTelemetry: one tracer provider per process and W3C trace context in Kafka headers.

A dataset's journey is one trace: the publisher injects ``traceparent`` into
the message headers, each consumer continues the trace from them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult

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


class JsonLinesExporter(SpanExporter):
    """Spans as JSON lines in ``<data_dir>/traces/<service>.jsonl`` (the local profile's default): what an OTLP
    collector would receive, readable with ``jq`` or ``genomebus audit journey``'s trace id."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            lines.append(json.dumps({
                "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
                "name": span.name, "kind": span.kind.name, "service": span.resource.attributes.get("service.name"),
                "start": _iso(span.start_time), "end": _iso(span.end_time),
                "status": span.status.status_code.name,
                "attributes": {k: v if isinstance(v, (str, int, float, bool)) else str(v)
                               for k, v in (span.attributes or {}).items()},
                "links": [f"{link.context.trace_id:032x}" for link in span.links],
            }, default=str))
        try:
            with self.path.open("a") as f:
                f.write("\n".join(lines) + "\n")
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _iso(ns: int | None) -> str | None:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat() if ns else None


def exporter_of(settings: Settings) -> str:
    """``otel_exporter`` as set, else ``file`` in the local profile and ``none`` elsewhere."""
    return settings.otel_exporter or ("file" if settings.profile == "local" else "none")


def setup(settings: Settings, service: str) -> None:
    """Install the tracer provider once; exporters are chosen by ``otel_exporter``."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({
        "service.name": f"genomebus-{service}", "service.namespace": "genomebus", "genomebus.node": settings.node_id,
    }), id_generator=_OwnRandomIds())
    exporter = exporter_of(settings)
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "file":
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(settings.data_dir / "traces" /
                                                                         f"{service}.jsonl")))
    elif exporter == "otlp":
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
