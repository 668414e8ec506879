"""bidding.rules against the reference model (spec §1, §7): any sequence of straight bids,
maximum bids, raises, ties, reserves, increment tables, buy-now attempts and clock moves,
decided one by one or in batches, gives the model's outcomes, bids, prices and leaders;
and always amounts never fall (equal only in a tie), seqs run on without a gap."""

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from auctions.errors import Code, InvalidAmount
from auctions.pricing import STANDARD_INCREMENTS, Increments, increments_of
from bidding.rules import Accepted, AuctionState, Offer, Person, Rejected, decide, offer_parse
from tests.bidding.reference_model import ModelAuction

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CENT = Decimal("0.01")
NAMES = ["ann", "ben", "cat", "dan"]
PEOPLE = {name: Person(uuid.UUID(int=i + 1), name) for i, name in enumerate([*NAMES, "sam"])}
BY_ID = {person.id: name for name, person in PEOPLE.items()}

increment_tables = st.one_of(
    st.sampled_from([Decimal("0.01"), Decimal("1.00"), Decimal("2.50")]).map(
        lambda step: Increments(fixed=step)
    ),
    st.just(increments_of(Decimal("0.01"), STANDARD_INCREMENTS)),
    st.lists(st.integers(1, 500), min_size=1, max_size=4, unique=True).flatmap(
        lambda starts: st.lists(
            st.integers(1, 300), min_size=len(starts) + 1, max_size=len(starts) + 1
        ).map(
            lambda steps: Increments(
                table=tuple(
                    (Decimal(start) / 10, Decimal(step) / 100)
                    for start, step in zip([0, *sorted(starts)], steps, strict=True)
                )
            )
        )
    ),
)


class Auctioneer(RuleBasedStateMachine):
    """Drives the rules and the model with the same offers."""

    @initialize(
        increments=increment_tables,
        starting=st.integers(1, 3000),
        reserve_above=st.one_of(st.none(), st.integers(0, 5000)),
        buy_now_above=st.one_of(st.none(), st.integers(0, 3000)),
        extension=st.sampled_from([0, 0, 30, 120]),
    )
    def open_auction(self, increments, starting, reserve_above, buy_now_above, extension):
        start = Decimal(starting) / 100
        reserve = None if reserve_above is None else start + Decimal(reserve_above) / 100
        buy_now = None
        if buy_now_above is not None:
            buy_now = max(start, reserve or start) + Decimal(buy_now_above) / 100
        end, cap = 600, 600 + 3600
        self.model = ModelAuction(
            creator="sam",
            starting=start,
            inc=increments.at,
            end=end,
            reserve=reserve,
            buy_now=buy_now,
            extension=extension,
            cap=cap if extension else end,
        )
        self.state = AuctionState(
            status="active",
            creator_id=PEOPLE["sam"].id,
            end_time=T0 + timedelta(seconds=end),
            max_end_time=T0 + timedelta(seconds=self.model.cap),
            extension_seconds=extension,
            starting_price=start,
            increments=increments,
            reserve_price=reserve,
            buy_now_price=buy_now,
            current_price=start,
            bid_count=0,
            leader=None,
            leader_max=None,
            leader_max_at=None,
            highest_bid_id=None,
            last_seq=0,
        )
        self.bids: list[tuple[str, Decimal, bool]] = []
        self.seqs: list[int] = []
        self.ids = (uuid.UUID(int=n) for n in itertools.count(10**6))

    # The offers, with amounts near what the auction asks for now.

    def near(self, cents: int) -> Decimal:
        return max(CENT, self.model.min_next() + Decimal(cents) / 100)

    @rule(who=st.sampled_from([*NAMES, "sam"]), delta=st.integers(-300, 2000))
    def straight_bid(self, who, delta):
        self.decide([(who, Offer(bidder=PEOPLE[who], amount=self.near(delta)))])

    @rule(
        who=st.sampled_from(NAMES),
        top=st.integers(-100, 6000),
        amount=st.one_of(st.none(), st.integers(-50, 200)),
    )
    def max_bid(self, who, top, amount):
        ceiling = self.near(top)
        bid = None if amount is None else min(ceiling, self.near(amount))
        self.decide([(who, Offer(bidder=PEOPLE[who], amount=bid, max_amount=ceiling))])

    @rule(above=st.integers(-200, 3000))
    def leader_raises(self, above):
        if self.model.leader is None:
            return
        top = max(CENT, self.model.leader_max + Decimal(above) / 100)
        who = self.model.leader
        self.decide([(who, Offer(bidder=PEOPLE[who], max_amount=top))])

    @rule(top=st.integers(0, 1000))
    def tie_with_the_leader(self, top):
        """Rule 3 at equal maxes: the earlier one wins, both bids at the max."""
        if self.model.leader is None:
            return
        who = next(name for name in NAMES if name != self.model.leader)
        top_amount = self.model.leader_max
        self.decide([(who, Offer(bidder=PEOPLE[who], max_amount=top_amount))])

    @rule(who=st.sampled_from([*NAMES, "sam"]))
    def buy_it_now(self, who):
        self.decide([(who, Offer(bidder=PEOPLE[who], buy_now=True))])

    @rule(
        offers=st.lists(
            st.tuples(
                st.sampled_from(NAMES), st.integers(-100, 3000), st.booleans(), st.booleans()
            ),
            min_size=2,
            max_size=6,
        )
    )
    def a_batch(self, offers):
        """Several offers decided together give what deciding them one by one gives."""
        made = []
        for who, delta, with_max, buy in offers:
            if buy:
                made.append((who, Offer(bidder=PEOPLE[who], buy_now=True)))
            elif with_max:
                made.append((who, Offer(bidder=PEOPLE[who], max_amount=self.near(delta))))
            else:
                made.append((who, Offer(bidder=PEOPLE[who], amount=self.near(delta))))
        self.decide(made)

    @rule(seconds=st.integers(1, 400))
    def time_passes(self, seconds):
        self.model.now += seconds

    # Deciding, and comparing with the model.

    def decide(self, offers):
        now = T0 + timedelta(seconds=self.model.now)
        decision = decide(self.state, [offer for _, offer in offers], now=now, new_id=self.new_id)
        expected_bids = []
        for (who, offer), outcome in zip(offers, decision.outcomes, strict=True):
            before = len(self.model.bids)
            verdict = self.model.offer(who, offer.amount, offer.max_amount, offer.buy_now)
            expected_bids += self.model.bids[before:]
            if verdict[0] == "rejected":
                assert isinstance(outcome, Rejected), (offer, outcome, verdict)
                assert outcome.code == Code(verdict[1])
                continue
            assert isinstance(outcome, Accepted), (offer, outcome, verdict)
            assert outcome.leading is verdict[1]
        state = decision.state
        bids = [(BY_ID[bid.bidder.id], bid.amount, bid.auto) for bid in decision.bids]
        assert bids == expected_bids
        self.bids += bids
        self.seqs += [event.seq for event in decision.events]
        assert [bid.seq for bid in decision.bids] == [
            event.seq for event in decision.events if event.type == "bid_placed"
        ]
        assert state.current_price == self.model.price()
        assert state.min_next_bid == self.model.min_next()
        assert (BY_ID[state.leader.id] if state.leader else None) == self.model.leader
        assert state.leader_max == self.model.leader_max
        assert state.end_time == T0 + timedelta(seconds=self.model.end)
        assert state.bid_count == len(self.model.bids)
        assert state.reserve_met is self.model.reserve_met()
        assert (state.status == "ended") is (self.model.status == "ended")
        assert (BY_ID[state.winner.id] if state.winner else None) == self.model.winner
        # A batch's last accepted reply shows the auction as the batch left it.
        accepted = [o for o in decision.outcomes if isinstance(o, Accepted)]
        if accepted:
            assert accepted[-1].current_price == state.current_price
            assert accepted[-1].seq == state.last_seq
        self.state = state

    def new_id(self):
        return next(self.ids)

    @invariant()
    def amounts_never_fall_and_tie_only_at_equal_maxes(self):
        for (who_a, a, _), (who_b, b, auto_b) in itertools.pairwise(getattr(self, "bids", [])):
            assert b >= a
            if b == a:  # rule 3's tie: the leader's automatic bid matches the challenger's
                assert auto_b and who_b != who_a

    @invariant()
    def seqs_are_contiguous(self):
        seqs = getattr(self, "seqs", [])
        assert seqs == list(range(1, len(seqs) + 1))


Auctioneer.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
TestAuctioneer = Auctioneer.TestCase


# A few cases spelled out, as the spec states them.


def state(**changes):
    base = AuctionState(
        status="active",
        creator_id=PEOPLE["sam"].id,
        end_time=T0 + timedelta(hours=1),
        max_end_time=T0 + timedelta(hours=2),
        extension_seconds=0,
        starting_price=Decimal("10.00"),
        increments=Increments(fixed=Decimal("1.00")),
        reserve_price=None,
        buy_now_price=None,
        current_price=Decimal("10.00"),
        bid_count=0,
        leader=None,
        leader_max=None,
        leader_max_at=None,
        highest_bid_id=None,
        last_seq=0,
    )
    return dataclasses.replace(base, **changes)


def led_by(who: str, price: str, top: str, **changes):
    return state(
        current_price=Decimal(price),
        bid_count=1,
        leader=PEOPLE[who],
        leader_max=Decimal(top),
        highest_bid_id=uuid.uuid4(),
        last_seq=1,
        **changes,
    )


def test_a_higher_max_leads_at_one_increment_over_the_old_max():
    decision = decide(
        led_by("ann", "10", "50"), [offer_parse(bidder=PEOPLE["ben"], max_amount="80")], now=T0
    )
    (outcome,) = decision.outcomes
    assert [(BY_ID[b.bidder.id], b.amount, b.auto) for b in decision.bids] == [
        ("ann", Decimal("50"), True),
        ("ben", Decimal("51"), False),
    ]
    assert (
        outcome.leading and outcome.amount == Decimal("51") and outcome.max_amount == Decimal("80")
    )
    assert [e.data["highest_bidder"]["name"] for e in decision.events] == ["ben", "ben"]


def test_a_lower_max_is_answered_at_once_by_the_leaders_max():
    decision = decide(
        led_by("ann", "10", "50"), [offer_parse(bidder=PEOPLE["ben"], max_amount="30")], now=T0
    )
    (outcome,) = decision.outcomes
    assert [(BY_ID[b.bidder.id], b.amount, b.auto) for b in decision.bids] == [
        ("ben", Decimal("30"), False),
        ("ann", Decimal("31"), True),
    ]
    assert not outcome.leading and outcome.amount == Decimal("30")
    assert outcome.current_price == Decimal("31")


def test_equal_maxes_the_earlier_wins_and_both_bids_stand_at_the_max():
    decision = decide(
        led_by("ann", "10", "50"), [offer_parse(bidder=PEOPLE["ben"], max_amount="50")], now=T0
    )
    assert [(BY_ID[b.bidder.id], b.amount) for b in decision.bids] == [
        ("ben", Decimal("50")),
        ("ann", Decimal("50")),
    ]
    assert decision.state.leader == PEOPLE["ann"]


def test_the_reserve_is_bid_for_a_leader_whose_max_reaches_it():
    decision = decide(
        state(reserve_price=Decimal("40")),
        [offer_parse(bidder=PEOPLE["ann"], max_amount="45")],
        now=T0,
    )
    assert decision.state.current_price == Decimal("40") and decision.state.reserve_met


def test_a_raise_changes_no_price_and_sends_no_event():
    decision = decide(
        led_by("ann", "10", "50"), [offer_parse(bidder=PEOPLE["ann"], max_amount="90")], now=T0
    )
    assert decision.bids == () and decision.events == ()
    assert decision.state.leader_max == Decimal("90")
    assert decision.changed


def test_a_raise_not_above_the_max_is_too_low_and_a_straight_bid_by_the_leader_already_highest():
    decision = decide(
        led_by("ann", "10", "50"),
        [
            offer_parse(bidder=PEOPLE["ann"], max_amount="50"),
            offer_parse(bidder=PEOPLE["ann"], amount="60"),
        ],
        now=T0,
    )
    assert [o.code for o in decision.outcomes] == [Code.BID_TOO_LOW, Code.ALREADY_HIGHEST]
    assert not decision.changed


def test_buy_now_ends_the_auction_with_the_buyer_as_winner():
    decision = decide(
        state(buy_now_price=Decimal("99")),
        [offer_parse(bidder=PEOPLE["ann"], buy_now=True)],
        now=T0,
    )
    assert [e.type for e in decision.events] == ["bid_placed", "auction_ended"]
    ended = decision.events[-1].data
    assert (ended["reason"], ended["final_price"], ended["winner"]["name"]) == (
        "bought",
        "99.00",
        "ann",
    )
    assert decision.outcomes[0].bought and decision.bought


def test_two_buyers_in_one_batch_make_one_sale():
    offers = [offer_parse(bidder=PEOPLE[who], buy_now=True) for who in ("ann", "ben")]
    decision = decide(state(buy_now_price=Decimal("99")), offers, now=T0)
    assert isinstance(decision.outcomes[0], Accepted)
    assert decision.outcomes[1].code == Code.AUCTION_ENDED


def test_an_automatic_bid_extends_a_soft_close_once():
    near_end = led_by(
        "ann",
        "10",
        "50",
        end_time=T0 + timedelta(seconds=20),
        extension_seconds=60,
        max_end_time=T0 + timedelta(hours=1),
    )
    decision = decide(near_end, [offer_parse(bidder=PEOPLE["ben"], max_amount="30")], now=T0)
    assert [e.type for e in decision.events] == ["bid_placed", "bid_placed", "auction_extended"]
    assert decision.state.end_time == T0 + timedelta(seconds=60)
    assert {e.data["end_time"] for e in decision.events[:2]} == {"2026-12-01T12:01:00.000000Z"}


@pytest.mark.parametrize(
    ("amount", "top"), [("20", "10"), (None, None), ("0", "5"), ("1", "abc"), ("1.001", "5")]
)
def test_a_malformed_maximum_is_an_invalid_amount(amount, top):
    with pytest.raises(InvalidAmount):
        offer_parse(bidder=PEOPLE["ann"], amount=amount, max_amount=top)
