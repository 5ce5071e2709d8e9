from io import StringIO

import pytest
from django.core.management import call_command

from benefits.downloadables.models import DownloadCount, File

pytestmark = pytest.mark.django_db


def test_bench_downloads_runs_and_leaves_nothing():
    out = StringIO()
    call_command("bench_downloads", mb=1, downloads=3, files=2, stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["upload", "download", "customer_view"]
    assert not File.objects.exists() and not DownloadCount.objects.exists()
