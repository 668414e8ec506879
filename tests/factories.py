"""factory_boy factories for the domain models."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import User
from auctions.models import Auction, AuctionStatus, Item


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Item {n}")
    description = "A thing worth having."


class AuctionFactory(factory.django.DjangoModelFactory):
    """An active auction that ends in an hour; use the services to change it afterwards."""

    class Meta:
        model = Auction

    item = factory.SubFactory(ItemFactory)
    creator = factory.SelfAttribute("item.owner")
    status = AuctionStatus.ACTIVE
    start_time = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    end_time = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    max_end_time = factory.LazyAttribute(lambda o: o.end_time + timedelta(hours=1))
    starting_price = Decimal("10.00")
    current_price = factory.SelfAttribute("starting_price")
    min_increment = Decimal("1.00")


def redis_clients_forget() -> None:
    """Drop the process's cached Redis clients and the rate limit's pause: the next call
    connects to settings.REDIS_URL as it is now."""
    import bidding.ratelimit
    from infra.redis import bid_path_redis_client, layer_shard_clients, redis_client

    redis_client.cache_clear()
    layer_shard_clients.cache_clear()
    bid_path_redis_client.cache_clear()
    bidding.ratelimit._take_token.cache_clear()
    bidding.ratelimit._skip_until = 0.0
