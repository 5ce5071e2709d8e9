"""Outside the API (backoffice, portal, hosted checkout), a database race that reached the
view is answered 409 with a short message, never a 500: nothing was written, and the same
request again will go through."""

import logging

from django.http import HttpResponse

from core.retry import is_transient

logger = logging.getLogger("recur.retry")


class ConcurrentUpdateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_transient(exception):
            return None
        logger.warning("concurrent update reached %s: %s", request.path, exception)
        response = HttpResponse(
            "This was being changed by someone else at the same moment; nothing was saved. Try again.",
            status=409,
            content_type="text/plain; charset=utf-8",
        )
        return response
