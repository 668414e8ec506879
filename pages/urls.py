"""Page routes (spec §4): the auction page is /auctions/<id>/, log in is /accounts/login/."""

from django.urls import include, path

from pages import accounts, auctions, bids, notifications

account_patterns = [
    path("login/", accounts.SiteLoginView.as_view(), name="login"),
    path("logout/", accounts.SiteLogoutView.as_view(), name="logout"),
    path("signup/", accounts.signup, name="signup"),
    path("tokens/", accounts.api_tokens, name="tokens"),
    path("tokens/new/", accounts.api_token_new, name="token_new"),
    path("tokens/<uuid:token_id>/revoke/", accounts.api_token_delete, name="token_revoke"),
    path("email/", notifications.email_settings, name="email"),
]

auction_patterns = [
    path("", auctions.home, name="home"),
    path("auctions/new/", auctions.auction_new, name="new"),
    path("auctions/mine/", auctions.my_auctions, name="mine"),
    path("auctions/<uuid:auction_id>/", auctions.auction_detail, name="detail"),
    path("auctions/<uuid:auction_id>/edit/", auctions.auction_edit, name="edit"),
    path("auctions/<uuid:auction_id>/bid/", bids.bid_create, name="bid"),
    path("auctions/<uuid:auction_id>/buy/", bids.buy_now_create, name="buy"),
    path("bids/mine/", bids.my_bids, name="my_bids"),
    path("auctions/<uuid:auction_id>/watch/", notifications.watch_set, name="watch"),
    path("watching/", notifications.watching, name="watching"),
]

notification_patterns = [
    path("", notifications.notification_list, name="list"),
    path("unsubscribe/<str:token>/", notifications.unsubscribe, name="unsubscribe"),
]

urlpatterns = [
    path("accounts/", include((account_patterns, "accounts"))),
    path("notifications/", include((notification_patterns, "notifications"))),
    path("", include((auction_patterns, "auctions"))),
]
