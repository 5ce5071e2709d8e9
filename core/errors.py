"""Errors raised by services. The API and the backoffice translate them for people."""


class ServiceError(Exception):
    """A rule refused the change; nothing was written."""

    status = 400
    type = "invalid_request_error"

    def __init__(self, detail: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.field = field


class InvalidInput(ServiceError):
    pass


class Conflict(ServiceError):
    """The request is valid but clashes with the current state of the object."""

    status = 409
    type = "conflict_error"


class Forbidden(ServiceError):
    """The actor may not do this (a role without the permission)."""

    status = 403
    type = "permission_error"
