from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class AccessTokenRateThrottle(SimpleRateThrottle):
    """Requests per minute per access token (``RECUR_API_RATE_LIMIT``), counted in Redis."""

    scope = "access_token"

    def get_rate(self) -> str:
        return f"{settings.RECUR_API_RATE_LIMIT}/min"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
