"""The HTTP JSON API (spec §3), mounted at /api/: `site` holds the NinjaAPI instance.

`base` (JSON, statuses, pagination) and `schemas` are shared by the routers, one per
area (`auctions`, `bids`); `auth` is how callers identify themselves.
"""
