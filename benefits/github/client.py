"""A small client of GitHub's REST API: the calls repository access needs, nothing more.

Settings: ``RECUR_GITHUB_API_URL`` (https://api.github.com, or a GitHub Enterprise Server's
``https://HOST/api/v3``), ``RECUR_GITHUB_TOKEN`` (a token with admin rights on the
repositories sold: a fine-grained token with Administration read/write, a classic token with
``repo``, or a GitHub App installation token) and ``RECUR_GITHUB_TIMEOUT_SECONDS``.

Errors are the benefit errors the grant engine understands: a timeout, a 5xx or a rate limit
is ``GitHubRetryableError`` (with ``retry_after`` when GitHub said when); anything else GitHub
refuses (401, 403, 404, 422) is ``GitHubError`` with a message an operator can act on.
"""

import time
from collections.abc import Iterator
from urllib.parse import quote

import requests
from django.conf import settings

from benefits.strategies import BenefitError, BenefitRetryableError

API_VERSION = "2022-11-28"
USER_AGENT = "Recur-billing (repository access benefits)"
PER_PAGE = 100
SECONDARY_LIMIT_WAIT = 60.0  # seconds, when a secondary rate limit names no time (GitHub's advice)
MAX_PAGES = 50  # 5,000 pending invitations on one repository: far beyond any real one


class GitHubError(BenefitError):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class GitHubRetryableError(BenefitRetryableError):
    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, retry_after=retry_after)
        self.status = status


def github_configured() -> tuple[bool, str]:
    if not settings.RECUR_GITHUB_TOKEN:
        return False, "GitHub is not configured: set RECUR_GITHUB_TOKEN"
    return True, ""


class GitHubClient:
    def __init__(self, *, base_url: str, token: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            }
        )

    @classmethod
    def from_settings(cls, *, timeout: float | None = None) -> "GitHubClient":
        ready, why = github_configured()
        if not ready:
            raise GitHubError(why)
        return cls(
            base_url=settings.RECUR_GITHUB_API_URL,
            token=settings.RECUR_GITHUB_TOKEN,
            timeout=timeout or settings.RECUR_GITHUB_TIMEOUT_SECONDS,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "GitHubClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the calls -----------------------------------------------------------------------

    def repository(self, owner: str, repo: str) -> dict:
        """GET /repos/{owner}/{repo}: the repository as the token sees it (``permissions.admin``)."""
        what = f"repository {owner}/{repo}"
        return _json(self._call("GET", _repo_path(owner, repo), what=what), dict, what)

    def collaborator_add(self, owner: str, repo: str, username: str, permission: str) -> dict | None:
        """PUT .../collaborators/{username}: the invitation (201), or None when the user already
        is a collaborator (204; the permission is then set to ``permission``). Idempotent: a
        second call while the invitation is pending answers that invitation again."""
        response = self._call(
            "PUT",
            f"{_repo_path(owner, repo)}/collaborators/{quote(username, safe='')}",
            json={"permission": permission},
            what=f"inviting {username} to {owner}/{repo}",
        )
        if response.status_code == 201 and response.content:
            return _json(response, dict, f"inviting {username}")
        return None

    def collaborator_remove(self, owner: str, repo: str, username: str) -> None:
        """DELETE .../collaborators/{username} (204, also when they were not one)."""
        self._call(
            "DELETE",
            f"{_repo_path(owner, repo)}/collaborators/{quote(username, safe='')}",
            what=f"removing {username} from {owner}/{repo}",
        )

    def invitations(self, owner: str, repo: str) -> Iterator[dict]:
        """GET .../invitations, every page (GitHub's ``Link: <...>; rel="next"``)."""
        url: str | None = f"{self.base_url}{_repo_path(owner, repo)}/invitations"
        params: dict | None = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            what = f"invitations of {owner}/{repo}"
            response = self._call("GET", url, params=params, what=what)
            yield from _json(response, list, what)
            url, params = response.links.get("next", {}).get("url"), None  # the link carries them

    def invitation_delete(self, owner: str, repo: str, invitation_id: int) -> bool:
        """DELETE .../invitations/{id}: True when deleted, False when it was gone already
        (accepted, declined, expired)."""
        try:
            self._call(
                "DELETE",
                f"{_repo_path(owner, repo)}/invitations/{int(invitation_id)}",
                what=f"deleting invitation {invitation_id} of {owner}/{repo}",
            )
        except GitHubError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- one request ---------------------------------------------------------------------

    def _call(self, method: str, path_or_url: str, *, what: str, **kwargs) -> requests.Response:
        url = path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise GitHubRetryableError(f"GitHub did not answer in {self.timeout:g}s ({what}).") from None
        except requests.RequestException as exc:
            raise GitHubRetryableError(f"GitHub unreachable ({what}): {type(exc).__name__}.") from None
        if response.status_code < 300:
            return response
        raise _error(response, what)


def _json(response: requests.Response, kind: type, what: str):
    """The body, when it is the JSON GitHub sends (a proxy's HTML page is worth a retry)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, kind):
        raise GitHubRetryableError(
            f"GitHub answered {response.status_code} with an unexpected body ({what}).",
            status=response.status_code,
        )
    return body


def _repo_path(owner: str, repo: str) -> str:
    return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return ""
    message = str(body.get("message") or "")
    details = [
        str(e.get("message") or e.get("code") or "") for e in body.get("errors") or [] if isinstance(e, dict)
    ]
    return "; ".join(part for part in [message, *details] if part)[:500]


def _retry_after(response: requests.Response) -> float | None:
    """Seconds GitHub asks us to wait: ``retry-after``, else, when the hourly quota is spent,
    until ``x-ratelimit-reset``; None when it names no time."""
    header = response.headers.get("retry-after")
    if header and header.strip().isdigit():
        return max(1.0, float(header))
    reset = response.headers.get("x-ratelimit-reset")
    if response.headers.get("x-ratelimit-remaining") == "0" and reset and reset.strip().isdigit():
        return max(1.0, float(reset) - time.time())
    return None


def _error(response: requests.Response, what: str) -> BenefitError:
    status, message = response.status_code, _message(response)
    said = f": {message}" if message else ""
    # Primary limits say x-ratelimit-remaining: 0; secondary ones a retry-after or their message.
    rate_limited = status == 429 or (
        status == 403
        and (
            response.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in response.headers
            or "rate limit" in message.lower()
        )
    )
    if rate_limited:
        wait = _retry_after(response) or SECONDARY_LIMIT_WAIT
        return GitHubRetryableError(
            f"GitHub rate limit ({status}) while {what}{said}", status=status, retry_after=wait
        )
    if status >= 500:
        return GitHubRetryableError(f"GitHub failed ({status}) while {what}{said}", status=status)
    if status == 401:
        return GitHubError(
            f"GitHub rejected the token (401) while {what}: check RECUR_GITHUB_TOKEN.", status=status
        )
    if status == 403:
        return GitHubError(
            f"GitHub refused (403) {what}{said}. The token needs admin rights on the repository.",
            status=status,
        )
    if status == 404:
        return GitHubError(
            f"GitHub found nothing (404) while {what}: the repository or the user does not exist, "
            "or the token cannot see it.",
            status=status,
        )
    return GitHubError(f"GitHub refused ({status}) {what}{said}", status=status)
