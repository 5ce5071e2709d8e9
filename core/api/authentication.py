from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import services as account_services
from accounts.models import AccessToken
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
        token = account_services.access_token_authenticate(secret=secret.strip())
        if token is None:
            guesses_check(request)
            guess_failed(request)
            raise exceptions.AuthenticationFailed(
                "The access token is unknown, expired or revoked.", code="invalid_token"
            )
        # The address's failed guesses are read with the token's request count, in one round
        # trip: a limited address gets 429 even with the right token, as before the lookup.
        counted = request_counted(request, token)
        too_many_failed(counted.failed_guesses, counted.wait)
        return ApiClient(token=token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class AccessTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = AccessTokenAuthentication
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization access token."}
