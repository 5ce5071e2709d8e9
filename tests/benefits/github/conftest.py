import pytest

from tests.benefits.github.fake_github import FakeGitHub

TOKEN = "ghp_test_token"


@pytest.fixture
def fake_github(settings):
    """A running fake GitHub with one repository (acme/pro-sdk) and two users; the settings
    point the client at it."""
    fake = FakeGitHub(token=TOKEN).start()
    fake.add_repository("acme", "pro-sdk")
    fake.add_user("octocat", "hubot")
    settings.RECUR_GITHUB_API_URL = fake.url
    settings.RECUR_GITHUB_TOKEN = TOKEN
    yield fake
    fake.stop()
