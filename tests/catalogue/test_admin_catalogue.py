"""Staff's catalogue tools in the admin (spec §9): auctions for any seller through
`auction_create`, pending auctions edited through the service against their version,
items on sale read-only, categories managed, bids read-only."""

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from auctions.models import Auction, AuctionEvent, AuctionStatus, Category, Item, ItemImage
from auctions.services import (
    Upload,
    auction_cancel,
    auction_start,
    auction_update,
    item_images_add,
)
from bidding.models import Bid
from bidding.services import bid_place
from tests.catalogue import imaging
from tests.catalogue.conftest import pending_auction, stored_files
from tests.factories import AuctionFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def admin_url(model: type[Model], view: str, *args: object) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def as_drawn(response) -> dict[str, str]:
    form = response.context["form"]
    data = {}
    for name in form.fields:
        if name in ("photos", "remove_photos"):
            continue
        value = form[name].value()
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M")
        data[name] = "" if value is None else str(value)
    return data


def new_auction(seller, /, **extra) -> dict:
    return {
        "seller": str(seller.id),
        "item_name": "Grandfather clock",
        "item_description": "Chimes on the hour.",
        "starting_price": "100",
        "duration_minutes": "120",
        **extra,
    }


class TestStaffCreateForAnySeller:
    def test_the_new_auction_is_the_sellers_made_by_the_service(
        self, admin_client, alice, lamps, media
    ):
        photos = [imaging.photo_upload("JPEG"), imaging.photo_upload("PNG")]
        response = admin_client.post(
            admin_url(Auction, "add"),
            new_auction(alice, category="lamps", reserve_price="150", photos=photos),
        )

        auction = Auction.objects.select_related("item").get()
        assert response.status_code == 302
        assert response["Location"] == admin_url(Auction, "change", auction.id)
        assert (auction.creator, auction.item.owner) == (alice, alice)
        assert auction.item.category == lamps
        assert auction.status == AuctionStatus.ACTIVE  # no start time: open at once
        assert (auction.starting_price, auction.current_price) == (Decimal("100.00"),) * 2
        assert auction.reserve_price == Decimal("150.00")
        assert auction.end_time - auction.start_time == timedelta(minutes=120)
        assert auction.max_end_time == auction.end_time
        assert auction.item.images.count() == 2
        assert len(stored_files(media)) == 4
        assert messages_of(response) == [f"“Grandfather clock” ({auction.id}): created."]
        # The snapshot everyone reads shows it, photos and all.
        snapshot = Client()
        snapshot.force_login(alice)
        body = snapshot.get(f"/api/auctions/{auction.id}/").json()
        assert body["item"]["category"] == {"slug": "lamps", "name": "Lamps"}
        assert len(body["item"]["images"]) == 2
        assert admin_client.get(response["Location"]).status_code == 200

    def test_a_future_start_makes_it_pending_and_editable(self, admin_client, alice):
        start = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        admin_client.post(admin_url(Auction, "add"), new_auction(alice, start_time=start))
        auction = Auction.objects.get()
        assert auction.status == AuctionStatus.PENDING
        page = admin_client.get(admin_url(Auction, "change", auction.id))
        assert 'id="auction-service-form"' in page.content.decode()

    @pytest.mark.parametrize(
        ("extra", "field", "message"),
        [
            ({"reserve_price": "50"}, "reserve_price", "cannot be below the starting price"),
            ({"buy_now_price": "99"}, "buy_now_price", "at least the starting price"),
            ({"starting_price": "1.234"}, "starting_price", "at most 2 decimal places"),
            ({"starting_price": "free"}, "starting_price", ""),
            ({"seller": ""}, "seller", "required"),
            ({"item_name": ""}, "item_name", "required"),
            ({"photos": "a text file"}, "photos", "not an image"),
        ],
        ids=lambda value: value if isinstance(value, str) else None,
    )
    def test_errors_are_shown_by_their_field_and_nothing_is_made(
        self, admin_client, alice, media, extra, field, message
    ):
        if "photos" in extra:
            extra = {"photos": [imaging.upload(b"a text file, not a photo", "x.jpg")]}
        response = admin_client.post(admin_url(Auction, "add"), new_auction(alice, **extra))
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert field in errors, errors
        assert message in " ".join(errors[field])
        html = response.content.decode()
        assert 'class="errorlist' in html
        assert not Auction.objects.exists()
        assert not Item.objects.exists()
        assert stored_files(media) == []

    def test_the_staff_form_always_makes_a_new_item_of_the_sellers(self, admin_client, alice):
        item = ItemFactory(owner=alice)
        AuctionFactory(item=item)
        assert Auction.objects.count() == 1
        # The staff form always makes a new item: the seller's item is not taken over.
        admin_client.post(admin_url(Auction, "add"), new_auction(alice, item_name=item.name))
        assert Auction.objects.count() == 2
        assert Item.objects.filter(owner=alice).count() == 2

    def test_someone_without_the_add_permission_cannot(self, alice):
        clerk = UserFactory(is_staff=True)
        clerk.user_permissions.add(Permission.objects.get(codename="view_auction"))
        browser = Client()
        browser.force_login(clerk)
        assert browser.get(admin_url(Auction, "add")).status_code == 403
        assert browser.post(admin_url(Auction, "add"), new_auction(alice)).status_code == 403
        assert not Auction.objects.exists()

    def test_the_seller_list_is_every_user(self, admin_client, alice, bob):
        form = admin_client.get(admin_url(Auction, "add")).context["form"]
        choices = {str(value) for value, _ in form.fields["seller"].choices if value}
        assert {str(alice.id), str(bob.id)} <= choices


class TestStaffEditPending:
    def test_an_edit_is_saved_through_the_service_with_an_event(self, admin_client, seller):
        auction = pending_auction(seller)
        page = admin_client.get(admin_url(Auction, "change", auction.id))
        assert page.status_code == 200
        drawn = as_drawn(page)
        assert drawn["version"] == "0"

        response = admin_client.post(
            admin_url(Auction, "change", auction.id),
            {**drawn, "item_name": "Brass lamp (pair)", "buy_now_price": "80"},
        )

        assert response.status_code == 302
        assert messages_of(response) == [f"“Brass lamp” ({auction.id}): saved."]
        auction.refresh_from_db()
        assert auction.item.name == "Brass lamp (pair)"
        assert auction.buy_now_price == Decimal("80.00")
        [event] = AuctionEvent.objects.filter(auction=auction)
        assert event.type == "auction_updated"
        assert set(event.payload) == {"item", "buy_now_price"}
        assert auction.creator == seller  # still the seller's

    def test_a_stale_version_is_refused_with_a_message(self, admin_client, seller):
        auction = pending_auction(seller)
        drawn = as_drawn(admin_client.get(admin_url(Auction, "change", auction.id)))
        auction_update(
            auction_id=auction.id,
            actor=seller,
            version=0,
            changes={"starting_price": "25.00"},
        )

        response = admin_client.post(
            admin_url(Auction, "change", auction.id),
            {**drawn, "item_name": "Staff's name", "starting_price": "10.00"},
        )

        assert response.status_code == 200
        [message] = messages_of(response)
        assert "changed since you opened it" in message
        assert "Nothing was saved" in message
        auction.refresh_from_db()
        assert (auction.item.name, auction.starting_price) == ("Brass lamp", Decimal("25.00"))
        redrawn = as_drawn(response)
        assert (redrawn["version"], redrawn["starting_price"]) == ("1", "25.00")
        assert AuctionEvent.objects.filter(auction=auction).count() == 1

    def test_a_bad_value_is_shown_and_nothing_is_saved(self, admin_client, seller):
        auction = pending_auction(seller)
        drawn = as_drawn(admin_client.get(admin_url(Auction, "change", auction.id)))
        response = admin_client.post(
            admin_url(Auction, "change", auction.id), {**drawn, "reserve_price": "1"}
        )
        assert response.status_code == 200
        assert response.context["form"].errors["reserve_price"]
        auction.refresh_from_db()
        assert (auction.reserve_price, auction.version) == (None, 0)

    def test_photos_can_be_added_by_staff(self, admin_client, seller, media):
        auction = pending_auction(seller)
        drawn = as_drawn(admin_client.get(admin_url(Auction, "change", auction.id)))
        response = admin_client.post(
            admin_url(Auction, "change", auction.id),
            {**drawn, "photos": [imaging.photo_upload("WEBP")]},
        )
        assert response.status_code == 302
        assert auction.item.images.count() == 1
        assert len(stored_files(media)) == 2

    def test_an_active_auction_is_read_only(self, admin_client, auction):
        page = admin_client.get(admin_url(Auction, "change", auction.id))
        assert page.status_code == 200
        html = page.content.decode()
        assert 'id="auction-service-form"' not in html
        assert 'name="starting_price"' not in html
        response = admin_client.post(
            admin_url(Auction, "change", auction.id),
            {"starting_price": "1", "version": str(auction.version), "item_name": "X"},
        )
        assert response.status_code == 403
        auction.refresh_from_db()
        assert (auction.starting_price, auction.item.name) != (Decimal("1.00"), "X")

    def test_a_pending_auction_that_started_meanwhile_is_not_overwritten(
        self, admin_client, seller
    ):
        auction = pending_auction(seller)
        drawn = as_drawn(admin_client.get(admin_url(Auction, "change", auction.id)))
        Auction.objects.filter(id=auction.id).update(start_time=timezone.now())
        assert auction_start(auction_id=auction.id)

        response = admin_client.post(
            admin_url(Auction, "change", auction.id), {**drawn, "item_name": "Too late"}
        )

        assert response.status_code == 403  # now a read-only record
        auction.refresh_from_db()
        assert auction.item.name == "Brass lamp"


class TestItemsOnSaleAreReadOnly:
    def item_post(self, item: Item, **changes) -> dict:
        management = {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0, "MIN_NUM_FORMS": 0}
        data = {"name": item.name, "description": item.description, "category": "", **changes}
        for prefix in ("images", "auctions"):
            data.update({f"{prefix}-{key}": value for key, value in management.items()})
        return data

    @pytest.mark.parametrize("status", ["active", "pending", "ended"])
    def test_an_item_that_is_or_was_on_sale_cannot_be_changed(self, admin_client, status):
        auction = AuctionFactory()
        if status == "pending":
            Auction.objects.filter(id=auction.id).update(
                status=AuctionStatus.PENDING, start_time=timezone.now() + timedelta(minutes=5)
            )
        elif status == "ended":
            Auction.objects.filter(id=auction.id).update(status=AuctionStatus.ENDED)
        item = auction.item
        page = admin_client.get(admin_url(Item, "change", item.id))
        assert page.status_code == 200
        assert 'name="name"' not in page.content.decode()

        response = admin_client.post(
            admin_url(Item, "change", item.id), self.item_post(item, name="Swapped")
        )

        assert response.status_code == 403
        item.refresh_from_db()
        assert item.name != "Swapped"

    def test_an_item_whose_only_auction_was_cancelled_can_be_changed(
        self, admin_client, seller, lamps
    ):
        auction = pending_auction(seller)
        auction_cancel(auction_id=auction.id, actor=seller)
        item = auction.item
        response = admin_client.post(
            admin_url(Item, "change", item.id),
            self.item_post(item, name="Relisted lamp", category=str(lamps.id)),
        )
        assert response.status_code == 302
        item.refresh_from_db()
        assert (item.name, item.category) == ("Relisted lamp", lamps)

    def test_photos_are_shown_but_not_editable(self, admin_client, seller):
        auction = pending_auction(seller)
        data = imaging.photo_bytes()
        item_images_add(
            item_id=auction.item_id,
            actor=seller,
            uploads=[Upload(file=io.BytesIO(data), size=len(data))],
        )
        [photo] = ItemImage.objects.all()
        html = admin_client.get(admin_url(Item, "change", auction.item_id)).content.decode()
        assert f'src="{photo.thumbnail.url}"' in html
        assert 'name="images-0-position"' not in html


class TestCategories:
    def test_staff_add_a_category_which_the_site_then_offers(self, admin_client, seller_client):
        page = admin_client.get(admin_url(Category, "add"))
        assert page.status_code == 200
        assert "prepopulated" in page.content.decode()  # the slug follows the name

        response = admin_client.post(
            admin_url(Category, "add"), {"name": "Garden tools", "slug": "garden-tools"}
        )

        assert response.status_code == 302
        category = Category.objects.get()
        assert (category.name, category.slug) == ("Garden tools", "garden-tools")
        new_form = seller_client.get("/auctions/new/").context["form"]
        assert ("garden-tools", "Garden tools") in new_form.fields["category"].choices
        assert seller_client.get("/api/categories/").json() == [
            {"slug": "garden-tools", "name": "Garden tools"}
        ]

    def test_a_slug_must_be_a_slug_and_unique(self, admin_client, lamps):
        for data in ({"name": "Lights", "slug": "lamps"}, {"name": "Bad", "slug": "not a slug"}):
            response = admin_client.post(admin_url(Category, "add"), data)
            assert response.status_code == 200
            assert response.context["adminform"].form.errors["slug"]
        assert Category.objects.count() == 1

    def test_staff_rename_a_category(self, admin_client, lamps):
        response = admin_client.post(
            admin_url(Category, "change", lamps.id), {"name": "Lighting", "slug": "lighting"}
        )
        assert response.status_code == 302
        lamps.refresh_from_db()
        assert (lamps.name, lamps.slug) == ("Lighting", "lighting")

    def test_a_category_in_use_cannot_be_deleted(self, admin_client, lamps):
        ItemFactory(category=lamps)
        response = admin_client.post(admin_url(Category, "delete", lamps.id), {"post": "yes"})
        assert response.status_code == 200  # Django explains what protects it
        assert Category.objects.filter(id=lamps.id).exists()

    def test_the_changelist_searches(self, admin_client, lamps, books):
        response = admin_client.get(admin_url(Category, "changelist"), {"q": "lamp"})
        assert list(response.context["cl"].result_list) == [lamps]

    def test_items_filter_by_category(self, admin_client, lamps):
        inside = ItemFactory(category=lamps)
        ItemFactory()
        response = admin_client.get(
            admin_url(Item, "changelist"), {"category__id__exact": lamps.id}
        )
        assert list(response.context["cl"].result_list) == [inside]


class TestBidsStayReadOnly:
    def test_a_bid_cannot_be_added_changed_or_deleted(self, admin_client, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid = Bid.objects.get()
        assert admin_client.get(admin_url(Bid, "change", bid.id)).status_code == 200
        data = {"amount": "1.00", "auction": str(auction.id), "bidder": str(alice.id)}
        assert admin_client.post(admin_url(Bid, "change", bid.id), data).status_code == 403
        assert admin_client.post(admin_url(Bid, "add"), data).status_code == 403
        assert (
            admin_client.post(admin_url(Bid, "delete", bid.id), {"post": "yes"}).status_code == 403
        )
        bid.refresh_from_db()
        assert bid.amount == Decimal("10.00")

    def test_an_auction_with_bids_is_read_only_with_its_bids_listed(
        self, admin_client, auction, alice
    ):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        html = admin_client.get(admin_url(Auction, "change", auction.id)).content.decode()
        assert 'id="bids-group"' in html
        assert 'name="bids-0-amount"' not in html
