"""One signed POST to a merchant's URL, and what came of it.

Each sender thread keeps its own ``requests`` session, so connections to an endpoint are
reused between deliveries. Redirects are not followed (a redirect could lead to an address
that was never checked), proxies from the environment are ignored, and in production the
connection goes to the address ``addresses.resolve_checked`` approved, with the host name kept
for TLS (SNI and certificate) and the ``Host`` header.
"""

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from billing.webhooks.addresses import AddressRefused, private_allowed, resolve_checked, url_shape_problem

EXCERPT_CHARS = 1000
READ_BYTES = 4096
USER_AGENT = "Recur-Webhooks/1"

_local = threading.local()


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    duration_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to ``request.pinned_address`` (when set) instead of resolving the host again."""

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        address = getattr(request, "pinned_address", None)
        if address is None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": hostname, "assert_hostname": hostname}
        return self.poolmanager.connection_from_host(
            scheme=host_params["scheme"], host=address, port=host_params["port"], pool_kwargs=pool_kwargs
        )


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = PinnedAddressAdapter(pool_connections=32, pool_maxsize=8, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def timeout_seconds() -> float:
    return float(getattr(settings, "RECUR_WEBHOOK_TIMEOUT_SECONDS", 10))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def post(*, url: str, body: str, headers: dict[str, str]) -> SendResult:
    """POST ``body``; never raises. The URL is checked again here (shape and addresses)."""
    started = time.monotonic()
    problem = url_shape_problem(url)
    if problem:
        return SendResult(None, 0, error=f"refused: {problem}")
    parts = urlsplit(url)
    pinned = None
    if not private_allowed():
        try:
            pinned = resolve_checked(parts.hostname, parts.port or 443)[0]
        except AddressRefused as exc:
            return SendResult(None, _elapsed_ms(started), error=f"refused: {exc}")
    request = requests.Request(
        "POST",
        url,
        data=body.encode(),
        headers={"content-type": "application/json", "user-agent": USER_AGENT, **headers},
    )
    session = _session()
    prepared = session.prepare_request(request)
    if pinned is not None:
        prepared.pinned_address = pinned
        prepared.headers["Host"] = parts.netloc
    timeout = timeout_seconds()
    try:
        response = session.send(prepared, timeout=(timeout, timeout), allow_redirects=False, stream=True)
    except requests.Timeout:
        return SendResult(None, _elapsed_ms(started), error=f"timeout: no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return SendResult(None, _elapsed_ms(started), error=f"connection failed: {exc}"[:500])
    whole = False
    try:
        raw = response.raw.read(READ_BYTES, decode_content=True) or b""
        whole = len(raw) < READ_BYTES  # read to the end: the connection can be reused
        excerpt = raw.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]
    except Exception as exc:  # a body that breaks off still has its status
        excerpt = f"(body unreadable: {exc})"[:EXCERPT_CHARS]
    finally:
        if whole:
            response.raw.release_conn()
        else:
            response.close()  # drops the connection rather than reading a long body
    return SendResult(response.status_code, _elapsed_ms(started), excerpt=excerpt)
