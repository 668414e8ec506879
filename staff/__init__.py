"""The Django admin for staff (spec §4): every model's admin, in one app above the domain.

Writes go through the services (auctions, bidding) like every other interface; bids,
bid outcomes and events are records, view only.
"""
