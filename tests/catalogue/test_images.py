"""Item photos (spec §9): real files, decoded, turned upright, stripped, sized, stored or not.

Every refusal is checked twice over: the spec's error shape, and that nothing was stored
(no ItemImage row, no file in the media folder).
"""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from auctions.errors import Code, DomainError, ValidationFailed
from auctions.images import DISPLAY_SIZE, MAX_IMAGE_BYTES, THUMBNAIL_SIZE, photo_prepare
from auctions.models import Auction, AuctionEvent, Item, ItemImage
from auctions.services import Upload, auction_create, item_images_add
from tests.catalogue import imaging
from tests.catalogue.conftest import stored_files
from tests.factories import AuctionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def prepare(data: bytes):
    return photo_prepare(io.BytesIO(data), size=len(data))


def images_url(item) -> str:
    return f"/api/items/{item.id}/images/"


def post_images(api, item, *files):
    return api.post(images_url(item), {"images": list(files)})


# What is wrong with a file, and the sentence that says so.
NOT_AN_IMAGE = "The file is not an image we can read."
WRONG_TYPE = "A photo must be a JPEG, PNG or WebP image."
DAMAGED = "The image is damaged or incomplete."
TOO_BIG = "A photo can be at most 10 MB."


def _over_ten_mb() -> bytes:
    # A real JPEG padded past the limit: refused by its size before it is decoded.
    return imaging.photo_bytes("JPEG") + b"\0" * (MAX_IMAGE_BYTES + 1)


BAD_FILES = {
    "text-renamed-jpg": (
        lambda: b"just some words, not a picture\n" * 10,
        "notes.jpg",
        NOT_AN_IMAGE,
    ),
    "empty": (lambda: b"", "empty.jpg", NOT_AN_IMAGE),
    "gif": (lambda: imaging.photo_bytes("GIF"), "anim.gif", WRONG_TYPE),
    "bmp": (lambda: imaging.photo_bytes("BMP"), "old.bmp", WRONG_TYPE),
    "truncated-jpeg": (lambda: imaging.truncated(imaging.noisy_jpeg()), "cut.jpg", DAMAGED),
    "truncated-png": (lambda: imaging.truncated(imaging.photo_bytes("PNG")), "cut.png", DAMAGED),
    "bomb-header-20000x20000": (lambda: imaging.png_claiming(20_000, 20_000), "bomb.png", None),
    "real-64-megapixels": (lambda: imaging.huge_real_png(), "huge.png", "too many pixels"),
    "over-10-mb": (_over_ten_mb, "big.jpg", TOO_BIG),
}


class TestPhotoPrepare:
    @pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
    def test_jpeg_png_and_webp_are_kept_in_their_own_format(self, image_format):
        photo = prepare(imaging.photo_bytes(image_format))
        extension, content_type = (
            imaging.EXTENSIONS[image_format],
            imaging.CONTENT_TYPES[image_format],
        )
        assert (photo.extension, photo.content_type) == (extension, content_type)
        assert imaging.opened(photo.display).format == image_format
        assert imaging.opened(photo.thumbnail).format == image_format

    def test_a_large_photo_gets_a_display_size_and_a_thumbnail(self):
        photo = prepare(imaging.photo_bytes("JPEG", size=(4000, 3000)))
        assert (photo.width, photo.height) == (DISPLAY_SIZE, 1200)
        assert imaging.opened(photo.display).size == (DISPLAY_SIZE, 1200)
        assert imaging.opened(photo.thumbnail).size == (THUMBNAIL_SIZE, 300)

    def test_a_tall_photo_is_fitted_by_its_height(self):
        photo = prepare(imaging.photo_bytes("PNG", size=(1000, 2000)))
        assert (photo.width, photo.height) == (800, DISPLAY_SIZE)
        assert imaging.opened(photo.thumbnail).size == (200, THUMBNAIL_SIZE)

    def test_a_small_photo_is_never_enlarged(self):
        photo = prepare(imaging.photo_bytes("WEBP", size=(300, 200)))
        assert (photo.width, photo.height) == (300, 200)
        assert imaging.opened(photo.thumbnail).size == (300, 200)

    def test_orientation_is_applied_and_exif_with_gps_is_gone(self):
        data = imaging.jpeg_from_camera(size=(600, 400), orientation=6)
        original = imaging.opened(data)
        assert original.getexif()[imaging.ORIENTATION] == 6
        assert original.getexif().get_ifd(imaging.GPS_IFD)  # the test file does carry GPS

        photo = prepare(data)

        for encoded in (photo.display, photo.thumbnail):
            image = imaging.opened(encoded)
            assert not image.getexif()
            assert "exif" not in image.info
            assert b"Exif" not in encoded and b"SpyCam" not in encoded
        display = imaging.opened(photo.display)
        # Lying on its side as stored; upright (portrait) once turned as EXIF says.
        assert display.size == (400, 600) == (photo.width, photo.height)
        # Orientation 6 turns the picture a quarter clockwise: its left half is now on top.
        assert imaging.dominant(display, (200, 100)) == "red"
        assert imaging.dominant(display, (200, 500)) == "blue"
        assert imaging.opened(photo.thumbnail).size == (267, 400)

    @pytest.mark.parametrize("orientation", [3, 8])
    def test_other_orientations_are_applied_too(self, orientation):
        display = imaging.opened(prepare(imaging.jpeg_from_camera(orientation=orientation)).display)
        if orientation == 3:  # upside down: left and right change places
            assert display.size == (600, 400)
            assert imaging.dominant(display, (100, 200)) == "blue"
        else:  # a quarter anticlockwise: the left half goes to the bottom
            assert display.size == (400, 600)
            assert imaging.dominant(display, (200, 500)) == "red"

    def test_png_text_exif_and_colour_profile_are_stripped(self):
        data = imaging.png_with_metadata()
        source = imaging.opened(data)
        assert {"Comment", "Author", "exif", "icc_profile"} <= set(source.info)

        photo = prepare(data)

        for encoded in (photo.display, photo.thumbnail):
            info = imaging.opened(encoded).info
            assert not {"Comment", "Author", "exif", "icc_profile"} & set(info), info
            assert imaging.SECRET_PLACE.encode() not in encoded
            assert b"Jane Doe" not in encoded

    def test_webp_exif_and_xmp_are_stripped(self):
        data = imaging.webp_with_metadata()
        assert imaging.SECRET_PLACE.encode() in data
        photo = prepare(data)
        for encoded in (photo.display, photo.thumbnail):
            info = imaging.opened(encoded).info
            assert not {"exif", "xmp", "icc_profile"} & set(info), info
            assert imaging.SECRET_PLACE.encode() not in encoded

    def test_a_multi_picture_jpeg_from_a_phone_is_a_jpeg(self):
        # Many phones write JPEGs with an MPF extension (a depth or gain map); Pillow
        # names their format MPO. They are JPEG files, and a seller's photos.
        data = imaging.photo_bytes("MPO")
        assert imaging.opened(data).format == "MPO"
        photo = prepare(data)
        assert (photo.extension, photo.content_type) == ("jpg", "image/jpeg")
        assert imaging.opened(photo.display).format == "JPEG"

    @pytest.mark.parametrize("kind", BAD_FILES)
    def test_bad_files_are_refused_with_a_clear_message(self, kind):
        make, _, message = BAD_FILES[kind]
        with pytest.raises(ValidationFailed) as refused:
            prepare(make())
        assert refused.value.code == Code.VALIDATION_ERROR
        assert refused.value.data == {"field": "images"}
        if message:
            assert message in refused.value.message

    def test_the_pixel_limit_names_the_dimensions(self):
        with pytest.raises(ValidationFailed, match=r"8000x8000.*at most 50 megapixels"):
            prepare(imaging.huge_real_png())

    def test_the_size_is_checked_before_anything_is_read(self):
        class Unreadable(io.BytesIO):
            def read(self, *args):
                raise AssertionError("read before the size was checked")

        with pytest.raises(ValidationFailed, match="at most 10 MB"):
            photo_prepare(Unreadable(), size=MAX_IMAGE_BYTES + 1)


class TestUploadThroughTheApi:
    def test_photos_are_stored_and_listed_in_the_spec_shape(self, seller_api, seller, media):
        item = ItemFactory(owner=seller)
        response = post_images(
            seller_api,
            item,
            imaging.photo_upload("JPEG", size=(3200, 2400)),
            imaging.photo_upload("PNG", size=(500, 300)),
            imaging.photo_upload("WEBP", size=(200, 800)),
        )

        assert response.status_code == 201, response.content
        rows = list(ItemImage.objects.filter(item=item).order_by("position"))
        assert [row.position for row in rows] == [1, 2, 3]
        expected = [
            {
                "url": f"/media/items/{item.id}/{row.id}.{extension}",
                "thumbnail_url": f"/media/items/{item.id}/{row.id}-thumb.{extension}",
                "width": width,
                "height": height,
            }
            for row, extension, (width, height) in zip(
                rows, ["jpg", "png", "webp"], [(1600, 1200), (500, 300), (200, 800)], strict=True
            )
        ]
        assert response.json() == {"images": expected}
        assert stored_files(media) == sorted(
            name for row in rows for name in (row.image.name, row.thumbnail.name)
        )
        for row in rows:
            with default_storage.open(row.thumbnail.name) as thumb:
                assert max(imaging.opened(thumb.read()).size) <= THUMBNAIL_SIZE

    def test_the_snapshot_carries_the_items_images(self, seller_api, alice_api, seller):
        auction = pending_with_item(seller)
        post_images(seller_api, auction.item, imaging.photo_upload("JPEG", size=(800, 600)))
        [row] = ItemImage.objects.filter(item=auction.item)

        snapshot = alice_api.get(f"/api/auctions/{auction.id}/").json()

        assert snapshot["item"]["images"] == [
            {
                "url": f"/media/items/{auction.item.id}/{row.id}.jpg",
                "thumbnail_url": f"/media/items/{auction.item.id}/{row.id}-thumb.jpg",
                "width": 800,
                "height": 600,
            }
        ]
        listed = alice_api.get("/api/auctions/").json()["results"][0]
        assert listed["item"]["images"] == snapshot["item"]["images"]

    def test_a_camera_photo_is_stored_upright_without_exif(self, seller_api, seller):
        item = ItemFactory(owner=seller)
        data = imaging.jpeg_from_camera(size=(600, 400), orientation=6)
        response = post_images(seller_api, item, imaging.upload(data, "IMG_0001.JPG"))

        [image] = response.json()["images"]
        assert (image["width"], image["height"]) == (400, 600)
        [row] = ItemImage.objects.filter(item=item)
        for name in (row.image.name, row.thumbnail.name):
            with default_storage.open(name) as stored:
                content = stored.read()
            assert b"Exif" not in content and b"SpyCam" not in content
            assert not imaging.opened(content).getexif()
        with default_storage.open(row.image.name) as stored:
            assert imaging.opened(stored.read()).size == (400, 600)

    def test_photos_are_added_after_those_already_there(self, seller_api, seller):
        item = ItemFactory(owner=seller)
        post_images(seller_api, item, imaging.photo_upload(), imaging.photo_upload())
        response = post_images(seller_api, item, imaging.photo_upload("PNG"))
        assert response.status_code == 201
        assert len(response.json()["images"]) == 3
        assert list(item.images.values_list("position", flat=True)) == [1, 2, 3]

    def test_ten_photos_are_allowed(self, seller_api, seller):
        item = ItemFactory(owner=seller)
        files = [imaging.photo_upload(size=(40, 30)) for _ in range(10)]
        assert post_images(seller_api, item, *files).status_code == 201
        assert item.images.count() == 10

    @pytest.mark.parametrize("kind", BAD_FILES)
    def test_a_bad_file_refuses_the_whole_upload(self, seller_api, seller, media, kind):
        make, name, message = BAD_FILES[kind]
        item = ItemFactory(owner=seller)
        good = imaging.photo_upload("JPEG")
        response = post_images(seller_api, item, good, imaging.upload(make(), name))

        assert response.status_code == 422, response.content
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["data"] == {"field": "images"}
        assert isinstance(body["message"], str) and body["message"]
        if message:
            assert message in body["message"]
        assert not ItemImage.objects.exists()
        assert stored_files(media) == []

    def test_more_than_ten_at_once_stores_nothing(self, seller_api, seller, media):
        item = ItemFactory(owner=seller)
        files = [imaging.photo_upload(size=(40, 30)) for _ in range(11)]
        response = post_images(seller_api, item, *files)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert "at most 10 photos" in response.json()["message"]
        assert not ItemImage.objects.exists()
        assert stored_files(media) == []

    def test_more_than_ten_in_all_stores_nothing_more(self, seller_api, seller, media):
        item = ItemFactory(owner=seller)
        post_images(seller_api, item, *[imaging.photo_upload(size=(40, 30)) for _ in range(9)])
        before = stored_files(media)
        response = post_images(seller_api, item, imaging.photo_upload(), imaging.photo_upload())
        assert response.status_code == 422
        assert response.json()["message"] == "An item can have at most 10 photos; it has 9."
        assert item.images.count() == 9
        assert stored_files(media) == before

    def test_someone_elses_item_is_refused(self, alice_api, seller, media):
        item = ItemFactory(owner=seller)
        response = post_images(alice_api, item, imaging.photo_upload())
        assert response.status_code == 403
        assert response.json() == {
            "code": "permission_denied",
            "message": "Only the item's owner can change its photos.",
        }
        assert not ItemImage.objects.exists()
        assert stored_files(media) == []

    def test_anonymous_is_refused(self, anonymous_api, seller, media):
        item = ItemFactory(owner=seller)
        response = post_images(anonymous_api, item, imaging.photo_upload())
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert stored_files(media) == []

    @pytest.mark.parametrize("item_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
    def test_no_such_item(self, seller_api, media, item_id):
        response = seller_api.post(
            f"/api/items/{item_id}/images/", {"images": [imaging.photo_upload()]}
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert stored_files(media) == []

    def test_no_file_at_all_is_a_validation_error(self, seller_api, seller):
        item = ItemFactory(owner=seller)
        response = seller_api.post(images_url(item), {})
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    def test_an_item_on_sale_cannot_change(self, seller_api, seller, media):
        auction = AuctionFactory(item__owner=seller)  # active
        response = post_images(seller_api, auction.item, imaging.photo_upload())
        assert response.status_code == 409
        assert response.json()["code"] == "not_editable"
        assert stored_files(media) == []
        assert auction.events.count() == 0

    def test_photos_of_a_pending_auction_tell_its_subscribers(self, seller_api, seller):
        auction = pending_with_item(seller)
        version = auction.version
        response = post_images(seller_api, auction.item, imaging.photo_upload())
        assert response.status_code == 201
        auction.refresh_from_db()
        assert auction.version == version + 1
        event = AuctionEvent.objects.get(auction=auction, seq=auction.last_seq)
        assert event.type == "auction_updated"
        assert list(event.payload) == ["item"]
        assert event.payload["item"]["images"] == response.json()["images"]


def pending_with_item(seller) -> Auction:
    return auction_create(
        creator=seller,
        item_name="Brass lamp",
        starting_price="10",
        start_time=timezone.now() + timedelta(hours=1),
        duration_seconds=3600,
    )


class TestItemThenPhotosThenAuction:
    def test_an_item_made_by_the_api_gets_photos_and_goes_on_sale(self, seller_api, lamps):
        response = seller_api.post_json(
            "/api/items/", {"name": "Desk lamp", "description": "Green shade.", "category": "lamps"}
        )
        assert response.status_code == 201
        item = response.json()
        assert item == {
            "id": item["id"],
            "name": "Desk lamp",
            "description": "Green shade.",
            "category": "lamps",
            "images": [],
        }
        photos = seller_api.post(
            f"/api/items/{item['id']}/images/", {"images": [imaging.photo_upload("PNG")]}
        )
        assert photos.status_code == 201

        sale = seller_api.post_json(
            "/api/auctions/", {"item_id": item["id"], "starting_price": "5", "duration_seconds": 60}
        )

        assert sale.status_code == 201
        snapshot = sale.json()
        assert snapshot["item"]["images"] == photos.json()["images"]
        assert snapshot["item"]["category"] == {"slug": "lamps", "name": "Lamps"}
        # On sale now: its photos can no longer change.
        late = seller_api.post(
            f"/api/items/{item['id']}/images/", {"images": [imaging.photo_upload()]}
        )
        assert late.status_code == 409

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"name": ""}, "item.name"), ({"name": "Lamp", "category": "nope"}, "category")],
    )
    def test_a_bad_item_is_422(self, seller_api, body, field):
        response = seller_api.post_json("/api/items/", body)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert response.json()["data"] == {"field": field}
        assert not Item.objects.exists()


class TestServices:
    def test_a_failed_auction_create_deletes_the_photos_it_stored(self, seller, media):
        item = ItemFactory(owner=seller)
        AuctionFactory(item=item)  # the item is already on sale
        photo = imaging.photo_bytes()
        with pytest.raises(DomainError) as refused:
            auction_create(
                creator=seller,
                item_id=item.id,
                starting_price="5",
                duration_seconds=60,
                photos=[Upload(file=io.BytesIO(photo), size=len(photo))],
            )
        assert refused.value.code == Code.ITEM_UNAVAILABLE
        assert not ItemImage.objects.exists()
        assert stored_files(media) == []

    def test_staff_may_add_photos_to_anyones_item(self, seller, staff):
        item = ItemFactory(owner=seller)
        photo = imaging.photo_bytes()
        [image] = item_images_add(
            item_id=item.id, actor=staff, uploads=[Upload(file=io.BytesIO(photo), size=len(photo))]
        )
        assert image.item == item

    def test_no_uploads_is_refused(self, seller):
        item = ItemFactory(owner=seller)
        with pytest.raises(ValidationFailed, match="at least one photo"):
            item_images_add(item_id=item.id, actor=seller, uploads=[])


class TestCreatePage:
    def form(self, **extra):
        return {
            "item_name": "Teapot",
            "item_description": "Blue and white.",
            "starting_price": "12.50",
            "duration_minutes": "60",
            **extra,
        }

    def test_several_photos_at_once_go_with_the_new_item(self, seller_client, media):
        photos = [
            imaging.photo_upload("JPEG", size=(2000, 1000)),
            imaging.photo_upload("PNG"),
            imaging.photo_upload("WEBP"),
        ]
        response = seller_client.post("/auctions/new/", self.form(photos=photos))

        assert response.status_code == 302, response.content.decode()[:2000]
        auction = Auction.objects.get()
        rows = list(auction.item.images.order_by("position"))
        assert [(row.position, row.image.name.rsplit(".", 1)[1]) for row in rows] == [
            (1, "jpg"),
            (2, "png"),
            (3, "webp"),
        ]
        assert (rows[0].width, rows[0].height) == (1600, 800)
        assert len(stored_files(media)) == 6

        detail = seller_client.get(response["Location"]).content.decode()
        assert 'id="gallery"' in detail
        assert f'src="{rows[0].image.url}"' in detail
        for row in rows:
            assert f'src="{row.thumbnail.url}"' in detail
        home = seller_client.get("/").content.decode()
        assert f'src="{rows[0].thumbnail.url}"' in home

    def test_one_bad_file_among_good_ones_stores_nothing(self, seller_client, media):
        photos = [
            imaging.photo_upload("JPEG"),
            imaging.upload(b"%PDF-1.4 not a photo", "scan.jpg"),
            imaging.photo_upload("PNG"),
        ]
        response = seller_client.post("/auctions/new/", self.form(photos=photos))

        assert response.status_code == 200
        field = response.context["form"]["photos"]
        assert field.errors == [NOT_AN_IMAGE]
        assert NOT_AN_IMAGE in response.content.decode()
        assert not Item.objects.exists()
        assert not Auction.objects.exists()
        assert not ItemImage.objects.exists()
        assert stored_files(media) == []

    def test_eleven_photos_store_nothing(self, seller_client, media):
        photos = [imaging.photo_upload(size=(40, 30)) for _ in range(11)]
        response = seller_client.post("/auctions/new/", self.form(photos=photos))
        assert response.status_code == 200
        assert "at most 10 photos" in response.context["form"]["photos"].errors[0]
        assert not Item.objects.exists()
        assert stored_files(media) == []

    def test_a_bomb_is_refused_on_the_page_too(self, seller_client, media):
        photos = [imaging.upload(imaging.png_claiming(20_000, 20_000), "bomb.png", "image/png")]
        response = seller_client.post("/auctions/new/", self.form(photos=photos))
        assert response.status_code == 200
        assert response.context["form"]["photos"].errors
        assert not Item.objects.exists()
        assert stored_files(media) == []
