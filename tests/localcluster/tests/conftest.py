"""The test bed's own suite runs on one bed per test module."""

# `localcluster` is a fixture: importing it makes it available here.
from tests.localcluster.pytest_plugin import localcluster  # noqa: F401 pylint: disable=unused-import
