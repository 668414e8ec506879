"""Search, filters, sorting and paging (spec §9), on real PostgreSQL full-text search.

Through `GET /api/auctions/` and the list page; every bad parameter is a 400 in the spec's
error shape, never a 500.
"""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from auctions.models import Auction, AuctionStatus
from auctions.selectors import auction_list
from tests.factories import AuctionFactory
from tests.pages.conftest import element

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def listed(api, **params) -> list[str]:
    response = api.get("/api/auctions/", params)
    assert response.status_code == 200, response.content
    return [result["item"]["name"] for result in response.json()["results"]]


def sell(name: str, description: str = "", **fields) -> Auction:
    return AuctionFactory(item__name=name, item__description=description, **fields)


def sell_by(seller, name: str, description: str = "", **fields) -> Auction:
    return sell(name, description, item__owner=seller, **fields)


@pytest.fixture
def catalogue(seller, lamps, books):
    """Five auctions: prices 10..50, ending one hour apart, created oldest to newest."""
    made = {
        "Brass lamp": sell_by(
            seller, "Brass lamp", "An old lamp, polished; the lamp works.", item__category=lamps,
            current_price=Decimal("30.00"), end_time=NOW + timedelta(hours=3),
        ),
        "Writing desk": sell_by(
            seller, "Writing desk", "Oak. Sold with a lamp.", current_price=Decimal("50.00"),
            end_time=NOW + timedelta(hours=1),
        ),
        "Reading lamps": sell_by(
            seller, "Reading lamps", "Two of them.", item__category=lamps,
            current_price=Decimal("10.00"), end_time=NOW + timedelta(hours=5),
        ),
        "Moby Dick": sell_by(
            seller, "Moby Dick", "A book about a whale.", item__category=books,
            current_price=Decimal("20.00"), end_time=NOW + timedelta(hours=2),
        ),
        "Teapot": sell_by(
            seller, "Teapot", "Blue and white china.", status=AuctionStatus.PENDING,
            current_price=Decimal("40.00"), start_time=NOW + timedelta(hours=1),
            end_time=NOW + timedelta(hours=4),
        ),
    }  # fmt: skip
    for age, auction in enumerate(reversed(list(made.values()))):
        Auction.objects.filter(id=auction.id).update(created_at=NOW - timedelta(minutes=age))
    return made


class TestFullTextSearch:
    def test_words_in_the_name_rank_above_words_in_the_description(self, alice_api, catalogue):
        # "lamp" is in Brass lamp's name and twice in its description; in Reading lamps'
        # name (stemmed); once in Writing desk's description.
        assert listed(alice_api, q="lamp") == ["Brass lamp", "Reading lamps", "Writing desk"]

    def test_ranking_is_postgresqls_own(self, alice_api, catalogue):
        ranked = list(auction_list(q="lamp").values_list("item__name", "rank"))
        ranks = [rank for _, rank in ranked]
        assert ranks == sorted(ranks, reverse=True)
        assert ranks[0] > ranks[-1] > 0

    def test_words_are_stemmed(self, alice_api, catalogue):
        assert listed(alice_api, q="whales") == ["Moby Dick"]
        assert set(listed(alice_api, q="lamps")) == {"Brass lamp", "Reading lamps", "Writing desk"}

    def test_case_does_not_matter(self, alice_api, catalogue):
        assert listed(alice_api, q="TEAPOT") == ["Teapot"]

    def test_every_word_must_match(self, alice_api, catalogue):
        assert listed(alice_api, q="oak lamp") == ["Writing desk"]

    def test_websearch_syntax(self, alice_api, catalogue):
        assert listed(alice_api, q='"brass lamp"') == ["Brass lamp"]
        assert set(listed(alice_api, q="lamp -brass")) == {"Reading lamps", "Writing desk"}
        assert set(listed(alice_api, q="teapot or whale")) == {"Teapot", "Moby Dick"}

    @pytest.mark.parametrize(
        "q", ['"brass', "-", "or", "&|!():*", "'", "lamp & (", "\\", "a" * 200, "  "]
    )
    def test_odd_queries_never_fail(self, alice_api, auction, q):
        response = alice_api.get("/api/auctions/", {"q": q})
        assert response.status_code == 200

    def test_stop_words_alone_match_nothing(self, alice_api, catalogue):
        body = alice_api.get("/api/auctions/", {"q": "the and of"}).json()
        assert (body["count"], body["results"]) == (0, [])

    def test_blank_query_is_no_search(self, alice_api, catalogue):
        assert len(listed(alice_api, q="   ")) == 5

    def test_no_match(self, alice_api, catalogue):
        body = alice_api.get("/api/auctions/", {"q": "submarine"}).json()
        assert body == {"count": 0, "next": None, "results": []}

    def test_a_new_or_renamed_item_is_searchable_at_once(self, alice_api, catalogue):
        item = catalogue["Teapot"].item
        item.name = "Samovar"
        item.save()
        assert listed(alice_api, q="samovar") == ["Samovar"]
        assert listed(alice_api, q="teapot") == []

    def test_search_uses_the_gin_index(self, catalogue):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = auction_list(q="lamp").explain()
        assert "item_search" in plan


class TestFilters:
    def test_category(self, alice_api, catalogue):
        assert listed(alice_api, category="lamps", ordering="price") == [
            "Reading lamps",
            "Brass lamp",
        ]
        assert listed(alice_api, category="books") == ["Moby Dick"]

    def test_status(self, alice_api, catalogue):
        assert listed(alice_api, status="pending") == ["Teapot"]
        assert len(listed(alice_api, status="active")) == 4
        assert listed(alice_api, status="ended") == []

    def test_price_range_is_inclusive(self, alice_api, catalogue):
        names = listed(alice_api, min_price="20", max_price="40.00", ordering="price")
        assert names == ["Moby Dick", "Brass lamp", "Teapot"]
        assert listed(alice_api, min_price="50") == ["Writing desk"]
        assert listed(alice_api, max_price="10.00") == ["Reading lamps"]

    def test_filters_combine_with_search(self, alice_api, catalogue):
        assert listed(alice_api, q="lamp", category="lamps", max_price="20") == ["Reading lamps"]
        assert listed(alice_api, q="lamp", status="pending") == []

    def test_min_above_max_matches_nothing(self, alice_api, catalogue):
        response = alice_api.get("/api/auctions/", {"min_price": "40", "max_price": "20"})
        assert response.status_code == 200
        assert response.json()["count"] == 0

    def test_the_categories_are_listed(self, alice_api, lamps, books):
        response = alice_api.get("/api/categories/")
        assert response.status_code == 200
        assert response.json() == [
            {"slug": "books", "name": "Books"},
            {"slug": "lamps", "name": "Lamps"},
        ]


class TestOrdering:
    @pytest.mark.parametrize(
        ("ordering", "expected"),
        [
            ("ending", ["Writing desk", "Moby Dick", "Brass lamp", "Teapot", "Reading lamps"]),
            ("newest", ["Teapot", "Moby Dick", "Reading lamps", "Writing desk", "Brass lamp"]),
            ("price", ["Reading lamps", "Moby Dick", "Brass lamp", "Teapot", "Writing desk"]),
            ("-price", ["Writing desk", "Teapot", "Brass lamp", "Moby Dick", "Reading lamps"]),
        ],
    )
    def test_every_ordering(self, alice_api, catalogue, ordering, expected):
        assert listed(alice_api, ordering=ordering) == expected

    def test_an_ordering_overrides_the_ranking(self, alice_api, catalogue):
        assert listed(alice_api, q="lamp", ordering="price") == [
            "Reading lamps",
            "Brass lamp",
            "Writing desk",
        ]

    def test_relevance_is_best_match_first(self, alice_api, catalogue):
        assert listed(alice_api, q="lamp", ordering="relevance") == listed(alice_api, q="lamp")

    def test_without_a_search_relevance_is_the_default_order(self, alice_api, catalogue):
        assert listed(alice_api, ordering="relevance") == listed(alice_api)
        # Newest first by default, without a status.
        assert listed(alice_api) == listed(alice_api, ordering="newest")

    def test_active_ones_end_soonest_first_and_pending_ones_start_soonest(
        self, alice_api, catalogue
    ):
        assert listed(alice_api, status="active") == [
            "Writing desk",
            "Moby Dick",
            "Brass lamp",
            "Reading lamps",
        ]
        later = sell(
            "Clock",
            status=AuctionStatus.PENDING,
            start_time=NOW + timedelta(hours=2),
            end_time=NOW + timedelta(hours=3),
        )
        assert listed(alice_api, status="pending") == ["Teapot", later.item.name]

    def test_equal_prices_keep_a_stable_order_across_pages(self, alice_api, seller):
        for n in range(7):
            sell(f"Chair {n}", current_price=Decimal("5.00"))
        pages = [
            alice_api.get("/api/auctions/", {"ordering": "price", "limit": 3, "offset": offset})
            for offset in (0, 3, 6)
        ]
        ids = [result["id"] for page in pages for result in page.json()["results"]]
        assert len(ids) == len(set(ids)) == 7


class TestPaging:
    def test_next_keeps_the_search_and_the_filters(self, alice_api, catalogue):
        first = alice_api.get(
            "/api/auctions/", {"q": "lamp", "category": "lamps", "ordering": "price", "limit": 1}
        ).json()
        assert first["count"] == 2
        query = parse_qs(urlsplit(first["next"]).query)
        assert query == {
            "q": ["lamp"],
            "category": ["lamps"],
            "ordering": ["price"],
            "limit": ["1"],
            "offset": ["1"],
        }
        second = alice_api.get(first["next"]).json()
        assert [r["item"]["name"] for r in second["results"]] == ["Brass lamp"]
        assert second["next"] is None

    def test_past_the_end_is_an_empty_page(self, alice_api, catalogue):
        body = alice_api.get("/api/auctions/", {"offset": 5}).json()
        assert body == {"count": 5, "next": None, "results": []}
        body = alice_api.get("/api/auctions/", {"offset": 2**63 - 1}).json()
        assert (body["count"], body["results"]) == (5, [])

    def test_the_last_full_page_has_no_next(self, alice_api, catalogue):
        body = alice_api.get("/api/auctions/", {"limit": 5}).json()
        assert len(body["results"]) == 5
        assert body["next"] is None

    def test_page_size_limits(self, alice_api, catalogue):
        assert len(alice_api.get("/api/auctions/", {"limit": 1}).json()["results"]) == 1
        assert len(alice_api.get("/api/auctions/", {"limit": 500}).json()["results"]) == 5


BAD_PARAMETERS = [
    ({"category": "no-such-thing"}, "category"),
    ({"category": "x" * 101}, "category"),
    ({"min_price": "cheap"}, "min_price"),
    ({"min_price": "-1"}, "min_price"),
    ({"max_price": "1.001"}, "max_price"),
    ({"max_price": "NaN"}, "max_price"),
    ({"min_price": "inf"}, "min_price"),
    ({"max_price": "10000000000.00"}, "max_price"),
    ({"ordering": "cheapest"}, "ordering"),
    ({"ordering": "-newest"}, "ordering"),
    ({"status": "sold"}, "status"),
    ({"q": "a" * 201}, "q"),
    ({"q": "lamp\x00"}, "q"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"offset": str(2**63)}, "offset"),
]


class TestBadParameters:
    @pytest.mark.parametrize(("params", "field"), BAD_PARAMETERS, ids=repr)
    def test_a_bad_parameter_is_a_400_in_the_spec_shape(self, alice_api, auction, params, field):
        response = alice_api.get("/api/auctions/", params)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "validation_error"
        assert isinstance(body["message"], str)
        assert body["message"].startswith(f"{field}:"), body["message"]
        assert set(body) <= {"code", "message", "data"}


PAGE_SIZE = 2


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr("pages.auctions.SEARCH_PAGE_SIZE", PAGE_SIZE)


def result_names(response) -> list[str]:
    return [auction.item.name for auction in response.context["page"].object_list]


def pager_links(html: str) -> dict[str, str]:
    found = {}
    for rel in ("prev", "next"):
        marker = f'rel="{rel}" href="'
        if marker in html:
            start = html.index(marker) + len(marker)
            found[rel] = html[start : html.index('"', start)].replace("&amp;", "&")
    return found


class TestSearchPage:
    def test_results_in_rank_order_with_the_query_kept(self, client, catalogue):
        response = client.get("/", {"q": "lamp"})
        assert response.status_code == 200
        assert result_names(response) == ["Brass lamp", "Reading lamps", "Writing desk"]
        html = response.content.decode()
        attrs, _ = element(html, "id_q")
        assert attrs["value"] == "lamp"
        _, count = element(html, "result-count")
        assert count == "3 auctions for “lamp”"

    def test_next_page_links_keep_the_search(self, client, catalogue, small_pages):
        first = client.get("/", {"q": "lamp", "category": "", "ordering": ""})
        assert result_names(first) == ["Brass lamp", "Reading lamps"]
        links = pager_links(first.content.decode())
        assert "prev" not in links
        query = parse_qs(urlsplit(links["next"]).query)
        assert query["q"] == ["lamp"]
        assert query["page"] == ["2"]

        second = client.get(f"/{links['next']}")
        assert second.status_code == 200
        assert result_names(second) == ["Writing desk"]
        back = pager_links(second.content.decode())
        assert "next" not in back
        assert parse_qs(urlsplit(back["prev"]).query) == {"q": ["lamp"], "page": ["1"]}

    def test_the_search_is_in_the_url_and_can_be_shared(self, client, catalogue):
        url = "/?q=lamp&category=lamps&ordering=-price&max_price=40"
        assert result_names(client.get(url)) == result_names(Client().get(url))
        assert result_names(client.get(url)) == ["Brass lamp", "Reading lamps"]

    def test_filters_and_orderings(self, client, catalogue):
        assert result_names(client.get("/", {"status": "pending"})) == ["Teapot"]
        assert result_names(client.get("/", {"category": "books"})) == ["Moby Dick"]
        names = result_names(client.get("/", {"ordering": "price", "min_price": "30"}))
        assert names == ["Brass lamp", "Teapot", "Writing desk"]

    def test_a_page_past_the_end_shows_the_last_page(self, client, catalogue, small_pages):
        response = client.get("/", {"q": "lamp", "page": "99"})
        assert response.status_code == 200
        assert response.context["page"].number == 2
        assert result_names(response) == ["Writing desk"]

    @pytest.mark.parametrize("page", ["0", "-1", "two", "1.5"])
    def test_a_bad_page_number_is_a_clear_400(self, client, auction, page):
        response = client.get("/", {"q": "lamp", "page": page})
        assert response.status_code == 400
        assert response.context["form"].errors["page"]

    @pytest.mark.parametrize(
        "params",
        [
            {"category": "no-such-thing"},
            {"status": "sold"},
            {"min_price": "cheap"},
            {"max_price": "-5"},
            {"ordering": "cheapest"},
            {"q": "a" * 201},
            {"q": "lamp\x00"},
        ],
        ids=repr,
    )
    def test_bad_parameters_are_a_400_page_that_says_why(self, client, auction, params):
        response = client.get("/", params)
        assert response.status_code == 400
        html = response.content.decode()
        assert element(html, "search-errors") is not None
        assert element(html, "results") is None

    def test_no_match_says_so(self, client, catalogue):
        response = client.get("/", {"q": "submarine"})
        assert response.status_code == 200
        html = response.content.decode()
        assert "Nothing matches" in html
        assert element(html, "result-count")[1] == "0 auctions for “submarine”"

    def test_without_a_search_the_front_page_lists_by_status(self, client, catalogue):
        response = client.get("/")
        assert response.status_code == 200
        assert [a.item.name for a in response.context["live"]][:2] == [
            "Writing desk",
            "Moby Dick",
        ]
        assert [a.item.name for a in response.context["upcoming"]] == ["Teapot"]
