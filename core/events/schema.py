"""The event catalogue in the OpenAPI document: one OpenAPI 3.1 ``webhooks`` entry per
registered event type, its body a component ``<Type>Event`` (the envelope of
``core.events.services.event_envelope`` whose ``data`` is the object's API component).

Built from the registry by a drf-spectacular post-processing hook, so every registered type
is documented and a payload is described by the same component as the object's GET."""

from drf_spectacular.plumbing import ResolvedComponent

from core.events.models import EVENT_ID_PREFIX
from core.events.registry import REGISTRY, EventType

# Standard Webhooks headers (https://www.standardwebhooks.com/), sent with every delivery.
SIGNATURE_HEADERS = (
    (
        "webhook-id",
        "The event's id (`evt_…`): the same on every retry of this event, so a receiver can "
        "ignore a delivery it has already processed.",
    ),
    ("webhook-timestamp", "Unix seconds when this attempt was signed; refuse ones too far from now."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` with the endpoint's "
        "secret; several space-separated signatures while a rotated secret overlaps the new one.",
    ),
)


def event_component_name(event_type: str) -> str:
    """``order.paid`` → ``OrderPaidEvent``; ``subscription.trial_will_end`` →
    ``SubscriptionTrialWillEndEvent``."""
    words = event_type.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words) + "Event"


def serializer_components(generator) -> dict[type, str]:
    """The response component name drf-spectacular gave each serializer class."""
    names: dict[type, str] = {}
    for component in generator.registry._components.values():
        if component.type != ResolvedComponent.SCHEMA or component.name.endswith("Request"):
            continue
        obj = component.object
        names.setdefault(obj if isinstance(obj, type) else type(obj), component.name)
    return names


def envelope_schema(spec: EventType, object_component: str) -> dict:
    return {
        "type": "object",
        "description": spec.description,
        "required": ["id", "type", "created_at", "organization_id", "data"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": f"^{EVENT_ID_PREFIX}[0-9a-f]{{32}}$",
                "description": "The event's id; also the `webhook-id` header.",
            },
            "type": {"type": "string", "enum": [spec.name]},
            "created_at": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (UTC): the change's commit, or the job's run.",
            },
            "organization_id": {"type": "string", "format": "uuid"},
            "data": {
                "$ref": f"#/components/schemas/{object_component}",
                "description": f"The {spec.object_type} as `GET` returns it at that moment.",
            },
        },
    }


def _webhook(spec: EventType, component: str) -> dict:
    return {
        "post": {
            "operationId": "webhook_" + spec.name.replace(".", "_"),
            "summary": spec.name,
            "description": spec.description,
            "tags": ["webhooks"],
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": text,
                }
                for name, text in SIGNATURE_HEADERS
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
            },
            "responses": {
                "2XX": {"description": "Received. Any other answer, or none within 10 s, is retried."}
            },
        }
    }


def add_event_webhooks(result, generator, request, public):
    """drf-spectacular post-processing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    names = serializer_components(generator)
    webhooks = result.setdefault("webhooks", {})
    for spec in sorted(REGISTRY.types.values(), key=lambda t: t.name):
        serializer = REGISTRY.kinds[spec.object_type].serializer
        if serializer not in names:
            raise LookupError(
                f"{serializer.__name__} (events of {spec.object_type}) is not the response of any "
                "API operation; register the serializer of the object's GET"
            )
        component = event_component_name(spec.name)
        schemas[component] = envelope_schema(spec, names[serializer])
        webhooks[spec.name] = _webhook(spec, component)
    return result
