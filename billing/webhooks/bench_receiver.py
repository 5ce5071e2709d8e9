"""A fast local webhook receiver for ``manage.py bench_webhooks``, run in a process of its own:

    python -m billing.webhooks.bench_receiver --secrets secrets.json

``secrets.json`` maps a path name to the endpoint's signing secret; deliveries arrive at
``POST /ep/<name>``. Every ``--verify-every``-th request's Standard Webhooks signature is
checked with the ``standardwebhooks`` library. Each arrival is kept as (receive time, path
name, event id, webhook-id); ``GET /_stats`` counts them, ``GET /_arrivals`` lists them,
``POST /_reset`` forgets them. It prints ``listening <port>`` once it accepts connections.

aiohttp (a development dependency) because one asyncio process absorbs several thousand
requests per second on one core, so the receiver is never what the benchmark measures.
"""

import argparse
import asyncio
import json
import socket
import sys
import time

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self, secrets: dict[str, str], verify_every: int, status: int):
        self.hooks = {name: Webhook(secret) for name, secret in secrets.items()}
        self.verify_every = max(1, verify_every)
        self.status = status
        self.arrivals: list[tuple[float, str, str, str]] = []
        self.verified = 0
        self.bad_signatures = 0

    async def deliver(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = time.time()
        name = request.match_info["name"]
        hook = self.hooks.get(name)
        if hook is None:
            return web.Response(status=404, text="no such endpoint")
        if len(self.arrivals) % self.verify_every == 0:
            try:
                hook.verify(body, dict(request.headers))
                self.verified += 1
            except WebhookVerificationError:
                self.bad_signatures += 1
                return web.Response(status=400, text="bad signature")
        try:
            event_id = json.loads(body).get("id", "")
        except ValueError:
            event_id = ""
        self.arrivals.append((received, name, event_id, request.headers.get("webhook-id", "")))
        return web.Response(status=self.status, text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"received": len(self.arrivals), "verified": self.verified, "bad_signatures": self.bad_signatures}
        )

    async def list_arrivals(self, request: web.Request) -> web.Response:
        return web.json_response(self.arrivals)

    async def reset(self, request: web.Request) -> web.Response:
        self.arrivals.clear()
        self.verified = self.bad_signatures = 0
        return web.json_response({"received": 0})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/ep/{name}", self.deliver),
                web.get("/_stats", self.stats),
                web.get("/_arrivals", self.list_arrivals),
                web.post("/_reset", self.reset),
            ]
        )
        return app


async def serve(receiver: Receiver, host: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"listening {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", required=True, help="JSON file: path name -> signing secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed when listening")
    parser.add_argument("--verify-every", type=int, default=10)
    parser.add_argument("--status", type=int, default=200, help="the status code every delivery gets")
    args = parser.parse_args()
    with open(args.secrets) as f:
        secrets = json.load(f)
    try:
        asyncio.run(serve(Receiver(secrets, args.verify_every, args.status), args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
