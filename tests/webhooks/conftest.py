"""A real HTTP receiver on a free port, and an events registry of the tests' own."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework import serializers
from standardwebhooks import Webhook

from accounts.models import Customer
from core.events import registry, services


@dataclass
class Received:
    path: str
    headers: dict
    body: str
    at: float

    def verify(self, secret: str) -> dict:
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Answers each path by its plan (status codes or ("hang", seconds)), then 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    plans: dict[str, list] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, path: str, *answers) -> str:
        self.plans[path] = list(answers)
        return self.url + path

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                plan = receiver.plans.get(self.path) or []
                answer = plan.pop(0) if plan else 200
            if isinstance(answer, tuple):  # ("hang", seconds)
                time.sleep(answer[1])
                answer = 200
            payload = f"answer {answer}".encode()
            try:
                self.send_response(answer)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(rec)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


class NoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "email", "name"]


@pytest.fixture
def events_registry(monkeypatch):
    """Every real event type and object kind, a ``note`` kind over customers for the tests'
    events, and of the consumers only the real ``webhooks`` one."""
    real = registry.REGISTRY
    fresh = registry.Registry(
        types=dict(real.types), kinds=dict(real.kinds), kinds_by_model=dict(real.kinds_by_model)
    )
    fresh.consumers["webhooks"] = real.consumers["webhooks"]
    monkeypatch.setattr(registry, "REGISTRY", fresh)
    monkeypatch.setattr(services, "REGISTRY", fresh)
    registry.register_object(
        "note", model=Customer, serializer=NoteSerializer, events={"made": "", "changed": ""}
    )
    fresh.kinds_by_model.update(real.kinds_by_model)  # a customer's own events keep their kind
    return fresh


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what the block defers to after commit (the outbox dispatch,
    the consumer, the sender and what they defer in turn), as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
