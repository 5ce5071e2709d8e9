"""The modal-action framework itself (core.backoffice.actions), beyond the revoke example."""

import pytest
from django import forms
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import ValidationError
from django.template import Template
from django_htmx.middleware import HtmxDetails

from accounts.admin import RevokeAccessToken
from accounts.models import AccessToken
from core.backoffice.actions import form_add_service_error, form_add_validation_error
from core.errors import Conflict, InvalidInput

pytestmark = pytest.mark.django_db


class AmountForm(forms.Form):
    amount = forms.IntegerField(min_value=1)
    note = forms.CharField(required=False)


class PreviewingAction(RevokeAccessToken):
    """Reuses the revoke URL name; previews instead of revoking, refuses to perform."""

    form_class = AmountForm
    preview_template = Template("<p id='preview'>would refund {{ preview.amount }}</p>")

    def preview(self, request, obj, form):
        return {"amount": form.cleaned_data["amount"] * 2}

    def perform(self, request, obj, form):
        raise InvalidInput("Too much.", field="amount", code="too_much")


@pytest.fixture
def call(rf, operator, org, make_token):
    token, _ = make_token(org)
    model_admin = admin.site.get_model_admin(AccessToken)
    action = PreviewingAction(model_admin)

    def call(data=None, htmx=True):
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        request = rf.post("/", data, **headers) if data is not None else rf.get("/", **headers)
        request.user = operator
        request.session = {}
        request._messages = FallbackStorage(request)
        request.htmx = HtmxDetails(request)
        response = model_admin.modal_action_view(request, str(token.pk), action=action)
        return response.render() if hasattr(response, "render") else response

    return call


def test_preview_shows_without_performing(call):
    response = call({"amount": "21", "_preview": "1"})

    html = response.content.decode()
    assert "would refund 42" in html
    assert 'name="_preview"' in html  # the Preview button
    assert "Too much." not in html


def test_service_error_with_a_field_lands_on_that_field(call):
    response = call({"amount": "5"})

    assert response.context_data["form"].errors == {"amount": ["Too much."]}


def test_invalid_form_is_not_previewed(call):
    response = call({"amount": "0", "_preview": "1"})

    assert "would refund" not in response.content.decode()
    assert "amount" in response.context_data["form"].errors


def test_service_error_mapping():
    form = AmountForm({"amount": "1"})
    form.is_valid()
    form_add_service_error(form, Conflict("Busy.", field="unknown_field"))
    form_add_service_error(form, InvalidInput("Bad note.", field="note"))

    assert form.non_field_errors() == ["Busy."]
    assert form.errors["note"] == ["Bad note."]


def test_model_validation_error_mapping():
    form = AmountForm({"amount": "1"})
    form.is_valid()
    form_add_validation_error(
        form, ValidationError({"note": "Too long.", "currency": "Unknown.", "__all__": "No."})
    )

    assert form.errors["note"] == ["Too long."]
    assert form.non_field_errors() == ["currency: Unknown.", "No."]
