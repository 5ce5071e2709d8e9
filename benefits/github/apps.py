from django.apps import AppConfig


class GithubAccessConfig(AppConfig):
    name = "benefits.github"
    label = "github_access"
    verbose_name = "GitHub repository access"

    def ready(self) -> None:
        from accounts.metadata import register_customer_metadata_check
        from benefits.github import consumers, strategy, usernames

        strategy.register()
        consumers.register()
        register_customer_metadata_check(usernames.METADATA_KEY, usernames.username_check)
