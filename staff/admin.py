"""Registers every model's admin when Django autodiscovers this app: each module does its own."""

from staff import accounts, auctions, bids  # noqa: F401
