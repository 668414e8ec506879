"""EventOrder, with no I/O: any interleaving of live, repeated, late and stored events yields
each seq once, in order, against the obvious model (the stored events 1..N, in order)."""

from hypothesis import given
from hypothesis import strategies as st

from realtime.ordering import EventOrder


def text(seq: int) -> str:
    return f"event {seq}"


def drain(order: EventOrder, sent: list[int]) -> None:
    """What the consumer does after every offer: send all that is next in order."""
    while (message := order.take_next()) is not None:
        sent.append(order.last_sent)
        assert message == text(order.last_sent)


def fill(order: EventOrder, stored: int, sent: list[int], page: int) -> None:
    """What a gap fill does: read the stored events it is missing, a page at a time."""
    while (gap := order.missing()) is not None:
        after, upto = gap
        for seq in range(after + 1, min(upto, stored, after + page) + 1):
            order.offer(seq, text(seq))
        drain(order, sent)


# A run: how many events are stored, where the subscription starts, and what reaches it:
# live events (any seq, repeats and late ones included) and gap fills, in any order.
actions = st.lists(
    st.one_of(st.tuples(st.just("live"), st.integers(1, 30)), st.just(("fill", 0))),
    max_size=80,
)


@given(
    stored=st.integers(0, 30),
    start=st.integers(0, 30),
    actions=actions,
    page=st.integers(1, 5),
)
def test_any_interleaving_sends_each_seq_once_in_order(stored, start, actions, page):
    start = min(start, stored)
    order = EventOrder(last_sent=start)
    sent: list[int] = []
    for kind, seq in actions:
        if kind == "live" and seq <= stored:  # only committed events are ever published
            order.offer(seq, text(seq))
            drain(order, sent)
        elif kind == "fill":
            fill(order, stored, sent, page)
        # Never a repeat, never out of order, never a skipped seq: at every step.
        assert sent == list(range(start + 1, start + 1 + len(sent)))
    # Whatever is still held gets filled; the resume up to the latest seq brings the rest.
    fill(order, stored, sent, page)
    for seq in range(order.last_sent + 1, stored + 1):
        order.offer(seq, text(seq))
    drain(order, sent)
    assert sent == list(range(start + 1, stored + 1))
    assert order.missing() is None


@given(live=st.permutations(list(range(1, 11))))
def test_live_events_in_any_order_need_no_read_when_none_is_lost(live):
    order = EventOrder(last_sent=0)
    sent: list[int] = []
    for seq in live:
        order.offer(seq, text(seq))
        drain(order, sent)
    assert sent == list(range(1, 11))
    assert order.missing() is None


def test_an_event_ahead_of_a_gap_is_held_and_the_gap_named():
    order = EventOrder(last_sent=3)
    order.offer(6, text(6))
    assert order.take_next() is None
    assert order.missing() == (3, 5)
    order.offer(4, text(4))
    assert order.take_next() == text(4)
    assert order.missing() == (4, 5)


def test_events_already_sent_are_dropped():
    order = EventOrder(last_sent=5)
    order.offer(5, text(5))
    order.offer(2, text(2))
    assert order.take_next() is None
    assert order.missing() is None
