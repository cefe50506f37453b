"""Prometheus metrics in the text exposition format (version 0.0.4), with no dependency.

Counters and gauges are per relay process; Prometheus sums them across processes.
Labels never carry a space id, a device key, a token or anything from a body: only
route templates, methods, statuses, error codes and message types.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in labels)
    return "{" + inner + "}"


@dataclass(slots=True)
class Metric:
    name: str
    help: str
    kind: str  # "counter" or "gauge"
    values: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] += amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        if not self.values and self.kind == "gauge":
            lines.append(f"{self.name} 0")
        for labels, value in sorted(self.values.items()):
            number = int(value) if float(value).is_integer() else value
            lines.append(f"{self.name}{_format_labels(labels)} {number}")
        return lines


class RelayMetrics:
    """Every metric the relay exports at ``/metrics`` (SPEC.md section 9.11)."""

    def __init__(self) -> None:
        self.requests = Metric(
            "accord_http_requests_total", "HTTP requests by route, method and status", "counter"
        )
        self.errors = Metric("accord_errors_total", "Error responses by error code", "counter")
        self.entries = Metric(
            "accord_entries_total", "Entries appended, by result (stored, duplicate)", "counter"
        )
        self.websockets = Metric("accord_websockets_open", "Open WebSockets", "gauge")
        self.websocket_messages = Metric(
            "accord_websocket_messages_total",
            "WebSocket messages by direction and type",
            "counter",
        )
        self.pairing_channels = Metric(
            "accord_pairing_channels_total", "Pairing channels created", "counter"
        )
        self.fanout_notifications = Metric(
            "accord_fanout_notifications_total",
            "Fan-out notifications received from the database",
            "counter",
        )
        self._gauges: list[tuple[Metric, Callable[[], float]]] = []

    def track(self, metric: Metric, read: Callable[[], float]) -> None:
        """Read ``metric``'s value from ``read`` at every scrape."""
        self._gauges.append((metric, read))

    def render(self) -> str:
        for metric, read in self._gauges:
            metric.set(read())
        lines: list[str] = []
        for metric in (
            self.requests,
            self.errors,
            self.entries,
            self.websockets,
            self.websocket_messages,
            self.pairing_channels,
            self.fanout_notifications,
        ):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
