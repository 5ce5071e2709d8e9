from django.urls import path

from benefits.downloadables.views import download

urlpatterns = [path("<str:token>", download, name="download")]
