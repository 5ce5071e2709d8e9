"""pytest plugin: a localstripe server for the test session (filled in below)."""
