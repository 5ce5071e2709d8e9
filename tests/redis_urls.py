"""Redis databases the suite uses; overridable so that two checkouts can test side by side."""

import os

TEST_BROKER_URL = os.environ.get("RECUR_TEST_BROKER_URL", "redis://localhost:6379/14")
TEST_CACHE_URL = os.environ.get("RECUR_TEST_CACHE_URL", "redis://localhost:6379/15")
