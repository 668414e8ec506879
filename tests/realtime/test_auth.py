"""Who may use the WebSocket API (spec §2): session cookie, API token, and the Origin check."""

from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.models import ApiToken, User
from bidding.models import Bid
from tests.realtime.conftest import (
    assert_alive,
    assert_quiet,
    receive_frame,
    request,
    send_json,
)

pytestmark = pytest.mark.django_db(transaction=True)

SAME_SITE = (b"origin", b"http://localhost")
CLOSED_UNAUTHENTICATED = {"type": "websocket.close", "code": 4401}


def bearer(token: str, scheme: str = "Bearer") -> tuple[bytes, bytes]:
    return (b"authorization", f"{scheme} {token}".encode())


@database_sync_to_async
def bidder_of_the_only_bid() -> User:
    return Bid.objects.select_related("bidder").get().bidder


async def bid(client: Any, auction: Any) -> dict[str, Any]:
    return await request(
        client, {"type": "place_bid", "auction_id": str(auction.id), "amount": "10.00"}
    )


class TestIdentified:
    async def test_a_session_cookie_identifies_a_browser_on_the_same_site(
        self, handshake, alice_cookie
    ):
        client, accepted, _ = await handshake("/ws/", [SAME_SITE, alice_cookie])
        assert accepted
        await assert_alive(client)

    async def test_a_browser_bids_as_the_user_logged_in(
        self, handshake, alice_cookie, alice, auction
    ):
        client, _, _ = await handshake("/ws/", [SAME_SITE, alice_cookie])
        assert (await bid(client, auction))["type"] == "bid_accepted"
        assert await bidder_of_the_only_bid() == alice

    async def test_a_bearer_token_in_the_authorization_header_identifies_a_client(
        self, handshake, alice_token
    ):
        client, accepted, _ = await handshake("/ws/", [bearer(alice_token)])
        assert accepted
        await assert_alive(client)

    async def test_the_bearer_scheme_is_case_insensitive(self, handshake, alice_token):
        client, accepted, _ = await handshake("/ws/", [bearer(alice_token, "bearer")])
        assert accepted
        await assert_alive(client)

    async def test_a_token_in_the_query_string_identifies_a_client(self, handshake, alice_token):
        client, accepted, _ = await handshake(f"/ws/?token={alice_token}")
        assert accepted
        await assert_alive(client)

    async def test_a_client_bids_as_the_user_its_token_belongs_to(
        self, handshake, bob_token, bob, auction
    ):
        client, _, _ = await handshake("/ws/", [bearer(bob_token)])
        assert (await bid(client, auction))["type"] == "bid_accepted"
        assert await bidder_of_the_only_bid() == bob

    async def test_a_token_is_judged_alone_so_it_wins_over_another_users_session(
        self, handshake, alice_cookie, bob_token, bob, auction
    ):
        client, _, _ = await handshake("/ws/", [bearer(bob_token), alice_cookie])
        assert (await bid(client, auction))["type"] == "bid_accepted"
        assert await bidder_of_the_only_bid() == bob

    async def test_the_endpoint_also_answers_without_the_trailing_slash(
        self, handshake, alice_token
    ):
        client, accepted, _ = await handshake(f"/ws?token={alice_token}")
        assert accepted
        await assert_alive(client)


class TestUnidentified:
    @pytest.mark.parametrize("where", ["query", "header"])
    async def test_a_bad_token_is_accepted_then_closed_with_4401(self, handshake, where):
        if where == "query":
            client, accepted, _ = await handshake("/ws/?token=not-a-token")
        else:
            client, accepted, _ = await handshake("/ws/", [bearer("not-a-token")])
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    @pytest.mark.parametrize("where", ["query", "header"])
    async def test_a_bad_token_is_closed_with_4401_even_with_a_valid_session_cookie(
        self, handshake, alice_cookie, where
    ):
        headers = [SAME_SITE, alice_cookie]
        if where == "query":
            client, accepted, _ = await handshake("/ws/?token=not-a-token", headers)
        else:
            client, accepted, _ = await handshake("/ws/", [*headers, bearer("not-a-token")])
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    async def test_a_revoked_token_is_closed_with_4401(self, handshake, alice_token, alice):
        await database_sync_to_async(ApiToken.objects.filter(user=alice).delete)()
        client, accepted, _ = await handshake("/ws/", [bearer(alice_token)])
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    async def test_the_token_of_a_deactivated_user_is_closed_with_4401(
        self, handshake, alice_token, alice
    ):
        await database_sync_to_async(User.objects.filter(id=alice.id).update)(is_active=False)
        client, accepted, _ = await handshake("/ws/", [bearer(alice_token)])
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    @pytest.mark.parametrize(
        "headers",
        [[], [SAME_SITE]],
        ids=["no-origin", "same-site-origin"],
    )
    async def test_a_handshake_without_any_identity_is_closed_with_4401(self, handshake, headers):
        client, accepted, _ = await handshake("/ws/", headers)
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    async def test_an_unknown_session_cookie_is_closed_with_4401(self, handshake):
        client, accepted, _ = await handshake(
            "/ws/", [SAME_SITE, (b"cookie", b"sessionid=no-such-session")]
        )
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    @pytest.mark.parametrize(
        "header", [b"Basic YWxpY2U6cHc=", b"Bearer", b"Bearer    ", b"Token x"]
    )
    async def test_an_authorization_header_without_a_bearer_token_identifies_no_one(
        self, handshake, header
    ):
        client, accepted, _ = await handshake("/ws/", [(b"authorization", header)])
        assert accepted
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED

    async def test_a_connection_closed_with_4401_answers_no_message(self, handshake):
        client, _, _ = await handshake("/ws/?token=not-a-token")
        assert await receive_frame(client) == CLOSED_UNAUTHENTICATED
        await send_json(client, {"type": "ping"})
        await assert_quiet(client)


class TestOrigin:
    @pytest.mark.parametrize(
        "origin",
        [b"http://evil.example", b"https://localhost.evil.example", b"null"],
    )
    async def test_a_cross_site_origin_is_refused_even_with_a_valid_token(
        self, handshake, alice_token, origin
    ):
        _, accepted, _ = await handshake(f"/ws/?token={alice_token}", [(b"origin", origin)])
        assert not accepted

    async def test_a_cross_site_origin_is_refused_even_with_a_valid_session(
        self, handshake, alice_cookie
    ):
        _, accepted, _ = await handshake(
            "/ws/", [(b"origin", b"http://evil.example"), alice_cookie]
        )
        assert not accepted

    @pytest.mark.parametrize(
        "origin", [b"http://localhost", b"https://localhost", b"http://127.0.0.1:8000"]
    )
    async def test_an_allowed_origin_with_a_session_is_accepted(
        self, handshake, alice_cookie, origin
    ):
        client, accepted, _ = await handshake("/ws/", [(b"origin", origin), alice_cookie])
        assert accepted
        await assert_alive(client)

    async def test_no_origin_with_a_token_is_accepted(self, handshake, alice_token):
        client, accepted, _ = await handshake("/ws/", [bearer(alice_token)])
        assert accepted
        await assert_alive(client)


async def test_a_session_cookie_without_origin_is_not_enough(handshake, alice_cookie):
    """Spec §2: a handshake without Origin (not a browser) is judged by its token alone."""
    client, accepted, _ = await handshake("/ws/", [alice_cookie])
    assert accepted
    assert await client.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


class TestRevokingATokenClosesItsConnections:
    """Spec §11: a revoked token's open connections end within seconds, with 4401; the
    user's other connections (other tokens, the browser's session) go on."""

    @staticmethod
    @database_sync_to_async
    def revoke(user: User, token: str) -> bool:
        from django.db import transaction

        from accounts.services import api_token_revoke

        record = ApiToken.objects.get(user=user, prefix=token[:8])
        with transaction.atomic():  # the connections hear of it once this commits
            return api_token_revoke(user=user, token_id=str(record.id))

    async def test_only_the_revoked_tokens_connections_close(
        self, connect, handshake, token_for, alice, alice_cookie
    ):
        revoked_token, kept_token = (
            await database_sync_to_async(token_for)(alice),
            await database_sync_to_async(token_for)(alice),
        )
        revoked_a, revoked_b = await connect(revoked_token), await connect(revoked_token)
        kept = await connect(kept_token)
        browser, accepted, _ = await handshake("/ws/", [SAME_SITE, alice_cookie])
        assert accepted

        assert await self.revoke(alice, revoked_token)

        for client in (revoked_a, revoked_b):
            assert await receive_frame(client) == CLOSED_UNAUTHENTICATED
        for client in (kept, browser):
            await assert_alive(client)

    async def test_a_revocation_of_another_users_token_closes_nothing_of_ours(
        self, connect, token_for, alice, bob
    ):
        alices = await connect(await database_sync_to_async(token_for)(alice))
        bobs_token = await database_sync_to_async(token_for)(bob)
        bobs = await connect(bobs_token)
        assert await self.revoke(bob, bobs_token)
        assert await receive_frame(bobs) == CLOSED_UNAUTHENTICATED
        await assert_alive(alices)
