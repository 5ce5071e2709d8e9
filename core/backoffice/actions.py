"""Modal actions: one admin view per operator action on one object (DESIGN §8).

An action is a ``ModalAction`` subclass listed on a ModelAdmin that mixes in
``ModalActionsMixin``. The mixin adds the URL ``<pk>/<name>/`` and a button on the change
page. GET renders the action's form (a ``<dialog>`` fragment for htmx, a full admin page
without JavaScript); POST validates the form and calls ``perform``, which calls one
service. The service does the work and writes the audit entry in its own transaction.

    class RevokeToken(ModalAction):
        name = "revoke"
        label = "Revoke"
        permission = "accounts.change_accesstoken"
        form_class = ReasonForm
        danger = True

        def perform(self, request, obj, form):
            return services.access_token_revoke(token=obj, actor=request.user, **form.cleaned_data)

    @admin.register(AccessToken)
    class AccessTokenAdmin(ModalActionsMixin, admin.ModelAdmin):
        modal_actions = [RevokeToken]
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_htmx.http import HttpResponseClientRedirect

from core.errors import ServiceError


def form_add_service_error(form: forms.BaseForm, exc: ServiceError) -> None:
    """Show a service's refusal on the form: on the field it names, else above the form."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, ValidationError(exc.detail, code=exc.code))


def form_add_validation_error(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a model ``ValidationError`` (say, from ``full_clean`` in a service) on the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            prefix = "" if field == NON_FIELD_ERRORS else f"{field}: "
            form.add_error(None, [f"{prefix}{message}" for e in errors for message in e.messages])


class ModalAction:
    """One operator action. Subclass it, set the attributes, implement ``perform``."""

    name: str = ""  # URL segment (<pk>/<name>/) and URL name suffix
    label: str = ""  # button text
    title: str = ""  # heading of the modal; defaults to the label
    description: str = ""  # what the action does, shown above the form
    permission: str = ""  # "app_label.codename" the user needs; required
    form_class: type[forms.BaseForm] = forms.Form
    submit_label: str = "Confirm"
    danger: bool = False  # a red button, for destructive actions
    success_message: str = ""  # formatted with {object}; defaults to "<label>: done."
    template_name: str = "backoffice/action.html"
    # Set to a template to offer a "Preview" button: POST with _preview=1 validates the form,
    # calls preview() and shows its result (in {{ preview }}) without performing anything.
    preview_template: str | None = None

    def __init__(self, model_admin: admin.ModelAdmin) -> None:
        if not self.name or not self.permission:
            raise TypeError(f"{type(self).__name__} needs a name and a permission")
        self.model_admin = model_admin
        self.opts = model_admin.model._meta

    # --- hooks ---------------------------------------------------------------------

    def is_available(self, request: HttpRequest, obj: models.Model) -> bool:
        """Whether to show the button (the service still enforces the rule on POST)."""
        return True

    def has_permission(self, request: HttpRequest, obj: models.Model) -> bool:
        return request.user.has_perm(self.permission)

    def get_initial(self, request: HttpRequest, obj: models.Model) -> dict[str, Any]:
        return {}

    def get_form_kwargs(self, request: HttpRequest, obj: models.Model) -> dict[str, Any]:
        return {}

    def get_form(self, request: HttpRequest, obj: models.Model, data=None, files=None) -> forms.BaseForm:
        return self.form_class(
            data=data,
            files=files,
            initial=self.get_initial(request, obj),
            **self.get_form_kwargs(request, obj),
        )

    def get_facts(self, request: HttpRequest, obj: models.Model) -> list[tuple[str, Any]]:
        """(label, value) pairs about the object, shown above the form."""
        return []

    def get_context(self, request: HttpRequest, obj: models.Model, form: forms.BaseForm) -> dict[str, Any]:
        """Extra template context for a custom ``template_name``."""
        return {}

    def preview(self, request: HttpRequest, obj: models.Model, form: forms.BaseForm) -> Any:
        """What the action would do with this valid form, computed by a service; nothing is written."""
        raise NotImplementedError

    def perform(self, request: HttpRequest, obj: models.Model, form: forms.BaseForm) -> Any:
        """Call the service with ``form.cleaned_data`` and ``actor=request.user``."""
        raise NotImplementedError

    def get_success_message(self, request: HttpRequest, obj: models.Model, result: Any) -> str:
        return (self.success_message or f"{self.label}: done.").format(object=obj)

    def get_success_url(self, request: HttpRequest, obj: models.Model, result: Any) -> str:
        return reverse(
            f"{self.model_admin.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[quote(obj.pk)],
        )

    # --- plumbing ----------------------------------------------------------------------

    @property
    def url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{self.name}"

    def url(self, obj: models.Model) -> str:
        return reverse(f"{self.model_admin.admin_site.name}:{self.url_name}", args=[quote(obj.pk)])

    def get_title(self) -> str:
        return self.title or self.label


@dataclass(frozen=True)
class ActionButton:
    name: str
    label: str
    url: str
    danger: bool


class ModalActionsMixin(admin.ModelAdmin):
    """Adds ``modal_actions`` to a ModelAdmin: URLs, views and buttons on the change page."""

    modal_actions: Sequence[type[ModalAction]] = ()

    def get_modal_actions(self) -> list[ModalAction]:
        if not hasattr(self, "_modal_actions"):
            self._modal_actions = [action_class(self) for action_class in self.modal_actions]
            names = [action.name for action in self._modal_actions]
            if len(names) != len(set(names)):
                raise TypeError(f"{type(self).__name__}: two modal actions share a name: {names}")
        return self._modal_actions

    def get_urls(self):
        urls = [
            path(
                f"<path:object_id>/{action.name}/",
                self.admin_site.admin_view(partial(self.modal_action_view, action=action)),
                name=action.url_name,
            )
            for action in self.get_modal_actions()
        ]
        return urls + super().get_urls()

    def get_modal_action_buttons(self, request: HttpRequest, obj: models.Model) -> list[ActionButton]:
        return [
            ActionButton(action.name, action.label, action.url(obj), action.danger)
            for action in self.get_modal_actions()
            if action.has_permission(request, obj) and action.is_available(request, obj)
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context["modal_actions"] = self.get_modal_action_buttons(request, obj)
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def modal_action_view(self, request: HttpRequest, object_id: str, action: ModalAction) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not request.user.has_perm(action.permission):  # before revealing whether the object exists
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            if request.htmx:  # a redirect would swap the index page into the modal
                raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not action.has_permission(request, obj):
            raise PermissionDenied
        preview = None
        if request.method == "POST":
            form = action.get_form(request, obj, data=request.POST, files=request.FILES)
            if form.is_valid():
                try:
                    if request.POST.get("_preview") and action.preview_template:
                        preview = action.preview(request, obj, form)
                    else:
                        result = action.perform(request, obj, form)
                        return self._modal_action_done(request, obj, action, result)
                except ServiceError as exc:
                    form_add_service_error(form, exc)
                except ValidationError as exc:
                    form_add_validation_error(form, exc)
        else:
            form = action.get_form(request, obj)
        return self.render_modal_action(request, obj, action, form, preview)

    def _modal_action_done(self, request, obj, action: ModalAction, result: Any) -> HttpResponse:
        messages.success(request, action.get_success_message(request, obj, result))
        url = action.get_success_url(request, obj, result)
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return HttpResponseRedirect(url)

    def render_modal_action(
        self, request: HttpRequest, obj: models.Model, action: ModalAction, form: forms.BaseForm, preview: Any
    ) -> TemplateResponse:
        in_modal = bool(request.htmx) and not request.htmx.boosted
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": obj,
            "object": obj,
            "action": action,
            "title": action.get_title(),
            "subtitle": str(obj),
            "form": form,
            "facts": action.get_facts(request, obj),
            "preview": preview,
            "in_modal": in_modal,
            "action_url": action.url(obj),
            "cancel_url": reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[quote(obj.pk)],
            ),
            **action.get_context(request, obj, form),
        }
        template = f"{action.template_name}#modal" if in_modal else action.template_name
        return TemplateResponse(request, template, context)
