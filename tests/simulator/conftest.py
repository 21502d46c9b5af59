"""The simulator suites use the shared fake Telnyx API fixtures of tests/conftest.py."""
