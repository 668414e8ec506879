"""A first end-to-end pass through the consumer with WebsocketCommunicator."""

import json

import pytest
from channels.testing import WebsocketCommunicator

from accounts.services import api_token_create
from auction_site.asgi import application
from tests.factories import AuctionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/?token={token}")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_subscribe_bid_and_receive_the_event():
    from asgiref.sync import sync_to_async

    seller, alice, bob = await sync_to_async(lambda: [UserFactory() for _ in range(3)])()
    auction = await sync_to_async(AuctionFactory)(item__owner=seller)
    _, alice_token = await sync_to_async(api_token_create)(user=alice)
    _, bob_token = await sync_to_async(api_token_create)(user=bob)
    watcher = await connect(bob_token)
    bidder = await connect(alice_token)
    await watcher.send_to(
        text_data=json.dumps({"type": "subscribe", "auction_id": str(auction.id)})
    )
    subscribed = json.loads(await watcher.receive_from())
    assert subscribed["type"] == "subscribed"
    await bidder.send_to(
        text_data=json.dumps(
            {"type": "place_bid", "auction_id": str(auction.id), "amount": 12.5, "request_id": "a"}
        )
    )
    reply = json.loads(await bidder.receive_from())
    assert reply["type"] == "bid_accepted", reply
    event = json.loads(await watcher.receive_from(timeout=5))
    assert event["type"] == "bid_placed"
    assert event["seq"] == 1
    await watcher.disconnect()
    await bidder.disconnect()
