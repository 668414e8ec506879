"""Account pages under /accounts/ (spec §4): login, logout, signup, API tokens."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.SiteLoginView.as_view(), name="login"),
    path("logout/", views.SiteLogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("tokens/", views.api_tokens, name="tokens"),
    path("tokens/new/", views.api_token_new, name="token_new"),
    path("tokens/<uuid:token_id>/revoke/", views.api_token_delete, name="token_revoke"),
]
