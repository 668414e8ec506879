"""Shared infrastructure any layer may use: the process's Redis client and Redis locks.

Nothing here knows about auctions, bids or delivery; the domain apps import it freely.
"""
