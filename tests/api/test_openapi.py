"""The OpenAPI document and the docs page: served without login, describing every endpoint."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/auctions/": {"get", "post"},
    "/api/auctions/{auction_id}/": {"get", "patch"},
    "/api/auctions/{auction_id}/bids/": {"get", "post"},
    "/api/auctions/{auction_id}/events/": {"get"},
    "/api/auctions/{auction_id}/cancel/": {"post"},
    "/api/auctions/{auction_id}/buy/": {"post"},
    "/api/auctions/{auction_id}/my-bid/": {"get"},
    "/api/items/": {"post"},
    "/api/items/{item_id}/images/": {"post"},
    "/api/categories/": {"get"},
    "/api/auctions/{auction_id}/watch/": {"put", "delete"},
    "/api/watchlist/": {"get"},
    "/api/notifications/": {"get"},
    "/api/notifications/read/": {"post"},
}


@pytest.fixture
def schema(client: Client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_openapi_document_is_served_without_login(client: Client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


def test_openapi_document_lists_every_endpoint_and_method(schema):
    assert {path: set(ops) for path, ops in schema["paths"].items()} == ENDPOINTS


def test_every_operation_requires_a_token_or_the_session(schema):
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert operation["security"] == [{"BearerTokenAuth": []}, {"SessionCookieAuth": []}]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["BearerTokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["SessionCookieAuth"]["in"] == "cookie"


def test_description_says_reads_require_authentication_too(schema):
    assert "reads included" in schema["info"]["description"]


def test_operations_have_readable_ids(schema):
    ids = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    assert ids == {
        "list_auctions",
        "create_auction",
        "get_auction",
        "place_bid",
        "list_bids",
        "list_events",
        "cancel_auction",
        "buy_auction",
        "my_bid",
        "edit_auction",
        "create_item",
        "add_item_images",
        "list_categories",
        "watch_auction",
        "unwatch_auction",
        "list_watchlist",
        "list_notifications",
        "mark_notifications_read",
    }


def test_amounts_are_documented_as_string_or_number(schema):
    amount = schema["components"]["schemas"]["AuctionIn"]["properties"]["starting_price"]
    assert {option["type"] for option in amount["anyOf"]} == {"string", "number"}
    optional = schema["components"]["schemas"]["BidIn"]["properties"]["amount"]
    assert {option["type"] for option in optional["anyOf"]} == {"string", "number", "null"}


@pytest.mark.parametrize(
    ("text", "valid"),
    [("150.10", True), ("0.01", True), ("7", True), ("150.100", True), ("9999999999.99", True),
     ("0", False), ("0.00", False), ("-1", False), ("1.001", False), ("10000000000", False),
     (".5", False), ("1e3", False), ("", False)],
)  # fmt: skip
def test_the_amount_pattern_admits_what_the_services_accept(schema, text, valid):
    from auctions.formats import InvalidAmount, parse_amount

    amount = schema["components"]["schemas"]["AuctionIn"]["properties"]["starting_price"]
    string, number = amount["anyOf"]
    assert (re.search(string["pattern"], text) is not None) is valid
    try:
        parse_amount(text)
        accepted = True
    except InvalidAmount:
        accepted = False
    assert accepted is valid
    assert number["exclusiveMinimum"] == 0
    assert number["maximum"] == 9999999999.99


def test_optional_bodies_are_objects_when_sent(schema):
    for path, method in [
        ("/api/auctions/{auction_id}/cancel/", "post"),
        ("/api/auctions/{auction_id}/buy/", "post"),
        ("/api/notifications/read/", "post"),
    ]:
        body = schema["paths"][path][method]["requestBody"]
        assert body["required"] is False
        assert set(body["content"]["application/json"]["schema"]) == {"$ref"}, path


def test_rules_between_fields_are_stated(schema):
    new_auction = schema["components"]["schemas"]["AuctionIn"]["allOf"]
    exactly_one = [
        sorted(choice["required"][0] for choice in rule["oneOf"])
        for rule in new_auction
        if "oneOf" in rule
    ]
    assert exactly_one == [["item", "item_id"], ["duration_seconds", "end_time"]]
    assert {"not"} in [set(rule) for rule in new_auction]  # min_increment or increments
    bid = schema["components"]["schemas"]["BidIn"]["anyOf"]
    assert sorted(choice["required"][0] for choice in bid) == ["amount", "max_amount"]


def test_an_edit_documents_its_if_match_header(schema):
    edit = schema["paths"]["/api/auctions/{auction_id}/"]["patch"]
    headers = [p for p in edit["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in headers] == [("If-Match", True)]


def test_errors_are_documented_with_the_error_shape(schema):
    bid = schema["paths"]["/api/auctions/{auction_id}/bids/"]["post"]["responses"]
    assert {"201", "401", "404", "409", "422", "429"} <= set(bid)
    error = bid["409"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOut")
    assert set(schema["components"]["schemas"]["ErrorOut"]["required"]) == {"code", "message"}


def test_list_parameters_are_documented(schema):
    params = schema["paths"]["/api/auctions/"]["get"]["parameters"]
    by_name = {p["name"]: p for p in params}
    assert set(by_name) == {
        "status", "q", "category", "min_price", "max_price", "ordering", "limit", "offset"
    }  # fmt: skip
    assert set(by_name["ordering"]["schema"]["anyOf"][0]["enum"]) == {
        "relevance", "ending", "newest", "price", "-price"
    }  # fmt: skip
    assert by_name["limit"]["schema"]["maximum"] == 500
    events = schema["paths"]["/api/auctions/{auction_id}/events/"]["get"]["parameters"]
    assert "since_seq" in {p["name"] for p in events}


def test_watchlist_and_notifications_carry_their_schemas(schema):
    paths, schemas = schema["paths"], schema["components"]["schemas"]

    def ref(response: dict) -> str:
        return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    watch = paths["/api/auctions/{auction_id}/watch/"]
    for method in ("put", "delete"):
        assert set(watch[method]["responses"]) == {"204", "401", "403", "404"}
        assert ref(watch[method]["responses"]["404"]) == "ErrorOut"
    assert ref(paths["/api/watchlist/"]["get"]["responses"]["200"]) == "AuctionPage"
    listing = paths["/api/notifications/"]["get"]
    assert ref(listing["responses"]["200"]) == "NotificationPage"
    assert ref(listing["responses"]["400"]) == "ErrorOut"
    assert {p["name"] for p in listing["parameters"]} == {"since_seq", "limit", "offset"}
    assert set(schemas["NotificationOut"]["required"]) == {
        "seq", "kind", "auction_id", "created_at", "data", "read"
    }  # fmt: skip
    assert set(schemas["Kind"]["enum"]) == {
        "outbid", "ending_soon", "won", "lost", "sold", "not_sold"
    }  # fmt: skip
    read = paths["/api/notifications/read/"]["post"]
    assert ref(read["responses"]["200"]) == "ReadOut"
    assert "upto_seq" in schemas["ReadIn"]["properties"]


def test_docs_page_renders_without_login(client: Client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/api/openapi.json" in html


def test_docs_page_assets_are_shipped(client: Client):
    from django.contrib.staticfiles import finders

    for asset in ("ninja/swagger-ui.css", "ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js"):
        assert finders.find(asset), asset
