from django.apps import AppConfig


class PostbacksConfig(AppConfig):
    name = "calls.postbacks"
    label = "postbacks"
    verbose_name = "Postbacks"
