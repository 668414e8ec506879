"""Page tests use Django's test client against the real PostgreSQL and Redis."""

from html.parser import HTMLParser

import pytest
from django.test import Client


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    """A second browser, where bob is logged in."""
    other = Client()
    other.force_login(bob)
    return other


_VOID_TAGS = frozenset({"input", "br", "img", "meta", "link", "hr", "source"})


class _ElementFinder(HTMLParser):
    """Finds the first element with an id and collects the text inside it."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.attrs: dict[str, str | None] | None = None
        self.depth = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in _VOID_TAGS
        elif self.attrs is None and dict(attrs).get("id") == self.element_id:
            self.attrs = dict(attrs)
            self.depth = 0 if tag in _VOID_TAGS else 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def element(html: str, element_id: str) -> tuple[dict[str, str | None], str] | None:
    """The attributes and text (tags stripped, spaces collapsed) of the element with this
    id, or None if the page has none."""
    finder = _ElementFinder(element_id)
    finder.feed(html)
    if finder.attrs is None:
        return None
    return finder.attrs, " ".join("".join(finder.text).split())
