from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import services as account_services
from accounts import token_cache
from accounts.models import AccessToken, hash_token
from core.api.guesses import guess_failed, guesses_check, too_many_failed
from core.api.throttling import request_counted


@dataclass(frozen=True)
class ApiClient:
    """``request.user`` for a token-authenticated request; the token is ``request.auth``."""

    token: AccessToken
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def organization(self):
        return self.token.organization


class AccessTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            guesses_check(request)
            guess_failed(request)
            raise exceptions.AuthenticationFailed(
                "Send the token as 'Authorization: Bearer <token>'.", code="invalid_authorization_header"
            )
        secret = secret.strip()
        if not account_services.access_token_secret_plausible(secret):
            guesses_check(request)
            guess_failed(request)
            raise self._unknown()
        # One round trip before the lookup: the request counted against the token, the
        # address's failed guesses (a limited address gets 429 even with the right token) and
        # the epoch that says whether this process may use the token it remembers.
        counted = request_counted(
            request,
            hash_token(secret)[:32],
            epoch_key=token_cache.EPOCH_KEY,
            epoch_new=token_cache.epoch_new(),
        )
        too_many_failed(counted.failed_guesses, counted.wait)
        token = account_services.access_token_authenticate(secret=secret, epoch=counted.epoch)
        if token is None:
            guess_failed(request)
            raise self._unknown()
        return ApiClient(token=token), token

    @staticmethod
    def _unknown() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed(
            "The access token is unknown, expired or revoked.", code="invalid_token"
        )

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class AccessTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = AccessTokenAuthentication
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization access token."}
