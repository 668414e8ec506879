"""The client library's tests run against the e2e servers: two real daphne processes."""

from tests.e2e.conftest import daphnes, redis_server, server_env  # noqa: F401
