"""The GitHub client against the local fake: the headers it sends, what each answer becomes."""

import time

import pytest

from benefits.github.client import GitHubClient, GitHubError, GitHubRetryableError
from benefits.strategies import BenefitError, BenefitRetryableError
from tests.benefits.github.conftest import TOKEN


@pytest.fixture
def client(fake_github):
    with GitHubClient(base_url=fake_github.url, token=TOKEN, timeout=2) as client:
        yield client


def test_headers_and_invite_then_already_a_collaborator(client, fake_github):
    invitation = client.collaborator_add("acme", "pro-sdk", "octocat", "pull")
    assert invitation["invitee"]["login"] == "octocat" and invitation["permissions"] == "pull"
    (request,) = fake_github.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("Recur")
    assert request["body"] == {"permission": "pull"}
    # Pending: the same invitation again (PUT is idempotent).
    assert client.collaborator_add("acme", "pro-sdk", "octocat", "pull")["id"] == invitation["id"]
    fake_github.accept("acme", "pro-sdk", "octocat")
    assert client.collaborator_add("acme", "pro-sdk", "octocat", "push") is None  # 204
    assert fake_github.repository("acme", "pro-sdk").collaborators == {"octocat": "push"}


def test_invitations_follow_every_page(client, fake_github):
    fake_github.page_size = 2
    fake_github.add_user(*[f"user{n}" for n in range(5)])
    for n in range(5):
        client.collaborator_add("acme", "pro-sdk", f"user{n}", "pull")
    logins = [i["invitee"]["login"] for i in client.invitations("acme", "pro-sdk")]
    assert logins == [f"user{n}" for n in range(5)]
    assert len(fake_github.calls("GET")) == 3
    first = logins and next(iter(client.invitations("acme", "pro-sdk")))
    assert client.invitation_delete("acme", "pro-sdk", first["id"]) is True
    assert client.invitation_delete("acme", "pro-sdk", first["id"]) is False  # gone: not an error


def test_server_errors_and_rate_limits_are_retryable(client, fake_github):
    fake_github.fail_next(502)
    with pytest.raises(GitHubRetryableError) as exc:
        client.repository("acme", "pro-sdk")
    assert isinstance(exc.value, BenefitRetryableError) and exc.value.retry_after is None
    fake_github.fail_next(429, headers={"retry-after": "42"})
    with pytest.raises(GitHubRetryableError) as exc:
        client.repository("acme", "pro-sdk")
    assert exc.value.retry_after == 42
    reset = int(time.time()) + 600
    fake_github.fail_next(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}, message="API rate limit"
    )
    with pytest.raises(GitHubRetryableError) as exc:
        client.repository("acme", "pro-sdk")
    assert 590 <= exc.value.retry_after <= 600 and "rate limit" in str(exc.value)


def test_refusals_are_not_retryable(client, fake_github, settings):
    with pytest.raises(GitHubError) as exc:
        client.collaborator_add("acme", "pro-sdk", "nobody-here", "pull")
    assert exc.value.status == 404 and not isinstance(exc.value, BenefitRetryableError)
    assert "does not exist" in str(exc.value)
    with pytest.raises(GitHubError) as exc:
        client.collaborator_add("acme", "pro-sdk", "octocat", "owner")
    assert exc.value.status == 422 and "bad permission" in str(exc.value)
    fake_github.fail_next(403, message="Must have admin rights to Repository.")
    with pytest.raises(GitHubError) as exc:
        client.repository("acme", "pro-sdk")
    assert exc.value.status == 403 and "admin rights" in str(exc.value)
    wrong = GitHubClient(base_url=fake_github.url, token="wrong", timeout=2)
    with pytest.raises(BenefitError, match="RECUR_GITHUB_TOKEN"):
        wrong.repository("acme", "pro-sdk")


def test_timeouts_and_refused_connections_are_retryable(fake_github):
    fake_github.delay = 0.5
    slow = GitHubClient(base_url=fake_github.url, token=TOKEN, timeout=0.1)
    with pytest.raises(GitHubRetryableError, match="did not answer"):
        slow.repository("acme", "pro-sdk")
    url = fake_github.url
    fake_github.stop()
    gone = GitHubClient(base_url=url, token=TOKEN, timeout=1)
    with pytest.raises(GitHubRetryableError, match="unreachable"):
        gone.repository("acme", "pro-sdk")


def test_a_secondary_rate_limit_without_a_time_waits_a_minute(client, fake_github):
    fake_github.fail_next(403, message="You have exceeded a secondary rate limit.")
    with pytest.raises(GitHubRetryableError) as exc:
        client.collaborator_add("acme", "pro-sdk", "octocat", "pull")
    assert exc.value.retry_after == 60  # not until the hourly reset the fake also sends
    fake_github.fail_next(429)
    with pytest.raises(GitHubRetryableError) as exc:
        client.collaborator_add("acme", "pro-sdk", "octocat", "pull")
    assert exc.value.retry_after == 60


def test_a_body_that_is_not_githubs_is_retried(client, fake_github):
    fake_github.answer_next(200, b"<html>proxy says hello</html>")
    with pytest.raises(GitHubRetryableError, match="unexpected body"):
        client.repository("acme", "pro-sdk")
