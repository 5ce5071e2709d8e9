from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts import events, token_cache
        from accounts.models import AccessToken, Organization

        events.register()
        for model in (AccessToken, Organization):
            post_save.connect(
                token_cache.epoch_bump, sender=model, dispatch_uid=f"auth-epoch-save-{model.__name__}"
            )
            post_delete.connect(
                token_cache.epoch_bump, sender=model, dispatch_uid=f"auth-epoch-delete-{model.__name__}"
            )
