"""`manage.py create_api_token`: the token alone on the last line, and it authenticates."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiToken
from accounts.services import api_token_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_the_token_alone_on_the_last_line_and_it_authenticates(alice):
    out, _ = run("alice")
    token = out.splitlines()[-1]
    assert token == token.strip()
    assert " " not in token
    assert len(token) >= 40
    assert api_token_user(token=token) == alice


def test_stores_only_the_hash_with_the_given_name(alice):
    out, _ = run("alice", "--name", "ci runner")
    token = out.splitlines()[-1]
    record = ApiToken.objects.get(user=alice)
    assert record.name == "ci runner"
    assert record.prefix == token[:8]
    assert token not in record.key_hash


def test_unknown_username_is_a_command_error(alice):
    with pytest.raises(CommandError, match="nobody"):
        run("nobody")
    assert not ApiToken.objects.exists()
