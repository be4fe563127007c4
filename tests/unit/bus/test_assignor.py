"""Round-robin assignment of partitions to consumer-group members."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.bus.assignor import round_robin

member_ids = st.text(alphabet="abcdefgh-0123456789", min_size=1, max_size=8)
topic_names = st.sampled_from(["t1", "t2", "t3"])


@st.composite
def groups(draw: st.DrawFn) -> tuple[dict[str, frozenset[str]], list[tuple[str, int]]]:
    members = draw(
        st.dictionaries(member_ids, st.frozensets(topic_names, min_size=1), min_size=1, max_size=6)
    )
    sizes = draw(st.dictionaries(topic_names, st.integers(min_value=1, max_value=8), min_size=1))
    return members, [(t, p) for t, n in sizes.items() for p in range(n)]


class TestRoundRobin:
    def test_deals_partitions_in_turn(self) -> None:
        """Two members of one topic with four partitions get alternate partitions, by member id order."""
        result = round_robin({"b": frozenset({"t"}), "a": frozenset({"t"})}, [("t", p) for p in range(4)])
        assert result == {"a": [("t", 0), ("t", 2)], "b": [("t", 1), ("t", 3)]}

    @given(groups())
    def test_every_subscribed_partition_has_exactly_one_subscribed_owner(
        self, group: tuple[dict[str, frozenset[str]], list[tuple[str, int]]]
    ) -> None:
        """Each partition of a topic someone subscribes to goes to exactly one member subscribed to it."""
        members, partitions = group
        result = round_robin(members, partitions)
        owned = [tp for tps in result.values() for tp in tps]
        assert len(owned) == len(set(owned))
        subscribed = set().union(*members.values())
        assert set(owned) == {tp for tp in partitions if tp[0] in subscribed}
        assert all(tp[0] in members[m] for m, tps in result.items() for tp in tps)

    @given(groups())
    def test_is_balanced_when_everyone_subscribes_to_everything(
        self, group: tuple[dict[str, frozenset[str]], list[tuple[str, int]]]
    ) -> None:
        """With identical subscriptions, members' partition counts differ by at most one."""
        members, partitions = group
        everything = frozenset(t for t, _ in partitions)
        counts = [len(v) for v in round_robin(dict.fromkeys(members, everything), partitions).values()]
        assert max(counts) - min(counts) <= 1

    @given(groups(), st.randoms())
    def test_does_not_depend_on_input_order(
        self, group: tuple[dict[str, frozenset[str]], list[tuple[str, int]]], rnd: object
    ) -> None:
        """Every member computes the same answer however it happened to list members and partitions."""
        members, partitions = group
        shuffled_members = list(members.items())
        shuffled_partitions = list(partitions)
        rnd.shuffle(shuffled_members)  # type: ignore[attr-defined]
        rnd.shuffle(shuffled_partitions)  # type: ignore[attr-defined]
        assert round_robin(dict(shuffled_members), shuffled_partitions) == round_robin(members, partitions)

    def test_no_members_no_assignment(self) -> None:
        """An empty group assigns nothing."""
        assert round_robin({}, [("t", 0)]) == {}
