"""The verdict cache of gossiped transactions (node/network.py): a copy costs a lookup, an
unpayable one gets a second look after a while (its sender may be funded), and the cache is
bounded, oldest first."""

from node.network import INVALID, KNOWN, UNPAYABLE, UNPAYABLE_SECONDS, TxVerdicts


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_verdicts_expire_only_when_unpayable_and_the_cache_is_bounded():
    clock = Clock()
    verdicts = TxVerdicts(size=3, clock=clock)
    verdicts.put(b"k", KNOWN)
    verdicts.put(b"u", UNPAYABLE)
    verdicts.put(b"i", INVALID)
    assert (verdicts.get(b"k"), verdicts.get(b"u"), verdicts.get(b"i")) == (KNOWN, UNPAYABLE, INVALID)
    clock.t += UNPAYABLE_SECONDS + 1
    assert verdicts.get(b"u") is None and verdicts.get(b"k") == KNOWN
    verdicts.put(b"a", KNOWN)
    verdicts.put(b"b", KNOWN)
    assert len(verdicts) == 3 and verdicts.get(b"k") is None  # the oldest went first
