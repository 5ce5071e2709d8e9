"""A local fake of the part of GitHub's REST API that repository access calls, with state.

It serves, on 127.0.0.1 and a free port, in a thread:
``GET /repos/{o}/{r}``, ``PUT|DELETE /repos/{o}/{r}/collaborators/{user}``,
``GET /repos/{o}/{r}/invitations`` (paged with a ``Link`` header) and
``DELETE /repos/{o}/{r}/invitations/{id}``, answering as GitHub does (201 with the invitation,
204 for an existing collaborator, 404 for an unknown repository or user, 401 for a wrong
token). ``fail_next(...)`` queues canned answers (a 500, a 429 with ``retry-after``, a 403
rate limit) served before the real ones; ``accept(...)`` is the invitee accepting.
"""

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROUTES = [
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)$"), "get_repository"),
    ("PUT", re.compile(r"^/repos/([^/]+)/([^/]+)/collaborators/([^/]+)$"), "put_collaborator"),
    ("DELETE", re.compile(r"^/repos/([^/]+)/([^/]+)/collaborators/([^/]+)$"), "delete_collaborator"),
    ("GET", re.compile(r"^/repos/([^/]+)/([^/]+)/invitations$"), "list_invitations"),
    ("DELETE", re.compile(r"^/repos/([^/]+)/([^/]+)/invitations/(\d+)$"), "delete_invitation"),
]


@dataclass
class Repository:
    owner: str
    name: str
    admin: bool = True
    collaborators: dict[str, str] = field(default_factory=dict)  # login (lower) -> permission
    invitations: dict[int, dict] = field(default_factory=dict)


@dataclass
class Canned:
    status: int
    headers: dict
    body: dict | bytes


class FakeGitHub:
    def __init__(self, *, token: str = "ghp_fake_token", page_size: int = 100):
        self.token = token
        self.page_size = page_size
        self.repositories: dict[tuple[str, str], Repository] = {}
        self.users: set[str] = set()
        self.requests: list[dict] = []  # every request: method, path, headers, body
        self._canned: list[Canned] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.delay = 0.0  # seconds before each answer (a slow GitHub)

    # --- test controls -------------------------------------------------------------------

    def add_repository(self, owner: str, name: str, *, admin: bool = True) -> Repository:
        repository = Repository(owner, name, admin=admin)
        self.repositories[(owner.lower(), name.lower())] = repository
        return repository

    def add_user(self, *logins: str) -> None:
        self.users.update(login.lower() for login in logins)

    def repository(self, owner: str, name: str) -> Repository:
        return self.repositories[(owner.lower(), name.lower())]

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict | None = None, message: str = ""
    ) -> None:
        with self._lock:
            for _ in range(times):
                self._canned.append(Canned(status, headers or {}, {"message": message or f"fake {status}"}))

    def answer_next(self, status: int, raw: bytes) -> None:
        """The next answer is these bytes (a proxy's page, a truncated body)."""
        with self._lock:
            self._canned.append(Canned(status, {}, raw))

    def accept(self, owner: str, name: str, login: str) -> None:
        """The invitee accepts: their invitation becomes a collaborator."""
        repository = self.repository(owner, name)
        with self._lock:
            for pk, invitation in list(repository.invitations.items()):
                if invitation["invitee"]["login"].lower() == login.lower():
                    repository.collaborators[login.lower()] = invitation["_permission"]
                    del repository.invitations[pk]

    def calls(self, method: str | None = None) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests if method in (None, r["method"])]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                fake._handle(self)

            do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- serving -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        self.requests.append(
            {"method": handler.command, "path": parts.path, "headers": dict(handler.headers), "body": body}
        )
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            canned = self._canned.pop(0) if self._canned else None
        if canned is not None:
            return self._send(handler, canned.status, canned.body, canned.headers)
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(handler, 401, {"message": "Bad credentials"})
        for method, pattern, name in ROUTES:
            match = pattern.match(parts.path)
            if match and method == handler.command:
                with self._lock:
                    status, payload, headers = getattr(self, name)(
                        *match.groups(), body=body, query=parts.query
                    )
                return self._send(handler, status, payload, headers)
        return self._send(handler, 404, {"message": "Not Found"})

    def _send(self, handler, status: int, payload, headers: dict | None = None) -> None:
        data = (
            payload
            if isinstance(payload, bytes)
            else b""
            if payload is None
            else json.dumps(payload).encode()
        )
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        sent = {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(time.time()) + 3600)}
        sent.update({key.lower(): value for key, value in (headers or {}).items()})
        for key, value in sent.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _repo(self, owner: str, name: str) -> Repository | None:
        return self.repositories.get((owner.lower(), name.lower()))

    def _repo_json(self, repository: Repository) -> dict:
        full = f"{repository.owner}/{repository.name}"
        return {
            "full_name": full,
            "name": repository.name,
            "owner": {"login": repository.owner},
            "html_url": f"https://github.example/{full}",
            "permissions": {"admin": repository.admin, "push": True, "pull": True},
        }

    def get_repository(self, owner, name, *, body, query):
        repository = self._repo(owner, name)
        if repository is None:
            return 404, {"message": "Not Found"}, None
        return 200, self._repo_json(repository), None

    def put_collaborator(self, owner, name, login, *, body, query):
        repository = self._repo(owner, name)
        if repository is None or login.lower() not in self.users:
            return 404, {"message": "Not Found"}, None
        permission = body.get("permission", "push")
        if permission not in ("pull", "triage", "push", "maintain", "admin"):
            return 422, {"message": "Validation Failed", "errors": [{"message": "bad permission"}]}, None
        if login.lower() in repository.collaborators:
            repository.collaborators[login.lower()] = permission
            return 204, None, None
        for invitation in repository.invitations.values():
            if invitation["invitee"]["login"].lower() == login.lower():
                invitation["_permission"] = invitation["permissions"] = permission
                return 201, self._invitation_json(invitation), None
        self._next_id += 1
        invitation = {
            "id": self._next_id,
            "invitee": {"login": login},
            "repository": self._repo_json(repository),
            "permissions": permission,
            "_permission": permission,
            "html_url": f"https://github.example/{repository.owner}/{repository.name}/invitations",
        }
        repository.invitations[invitation["id"]] = invitation
        return 201, self._invitation_json(invitation), None

    def _invitation_json(self, invitation: dict) -> dict:
        return {k: v for k, v in invitation.items() if not k.startswith("_")}

    def delete_collaborator(self, owner, name, login, *, body, query):
        repository = self._repo(owner, name)
        if repository is None:
            return 404, {"message": "Not Found"}, None
        repository.collaborators.pop(login.lower(), None)
        return 204, None, None

    def list_invitations(self, owner, name, *, body, query):
        repository = self._repo(owner, name)
        if repository is None:
            return 404, {"message": "Not Found"}, None
        params = parse_qs(query)
        per_page = min(int(params.get("per_page", ["30"])[0]), self.page_size)
        page = int(params.get("page", ["1"])[0])
        items = sorted(repository.invitations.values(), key=lambda i: i["id"])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            next_url = f"{self.url}/repos/{owner}/{name}/invitations?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return 200, [self._invitation_json(i) for i in chunk], headers

    def delete_invitation(self, owner, name, invitation_id, *, body, query):
        repository = self._repo(owner, name)
        if repository is None or repository.invitations.pop(int(invitation_id), None) is None:
            return 404, {"message": "Not Found"}, None
        return 204, None, None
