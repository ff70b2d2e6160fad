"""The test bed's own suite runs on one bed per test module."""

from tests.localcluster.pytest_plugin import localcluster  # noqa: F401  pylint: disable=unused-import  (a fixture)
