"""Auction and bid pages (spec §4): the auction page is /auctions/<id>/."""

from django.urls import path

from auctions import views
from bidding import views as bidding_views

app_name = "auctions"

urlpatterns = [
    path("", views.home, name="home"),
    path("auctions/new/", views.auction_new, name="new"),
    path("auctions/mine/", views.my_auctions, name="mine"),
    path("auctions/<uuid:auction_id>/", views.auction_detail, name="detail"),
    path("auctions/<uuid:auction_id>/bid/", bidding_views.bid_create, name="bid"),
    path("bids/mine/", bidding_views.my_bids, name="my_bids"),
]
