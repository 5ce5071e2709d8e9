from rest_framework import exceptions, permissions


class HasTokenScope(permissions.BasePermission):
    """A view names its ``scope_resource``; reads need `<resource>:read`, writes `<resource>:write`."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None:
            raise exceptions.NotAuthenticated("An access token is required.", code="missing_token")
        resource = getattr(view, "scope_resource", None)
        if resource is None:
            return False
        write = request.method not in permissions.SAFE_METHODS
        if not token.has_scope(resource, write):
            needed = f"{resource}:{'write' if write else 'read'}"
            raise exceptions.PermissionDenied(
                f"This token lacks the '{needed}' scope.", code="insufficient_scope"
            )
        return True
