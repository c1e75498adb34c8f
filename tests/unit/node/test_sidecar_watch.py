"""The sidecar watch's states and the AI counters, alone: a change of state is counted once
(starting -> ready, ready -> down, down -> ready as "back"), and a committed block's AI logs are
counted for this validator only, each by the field that names it."""

from __future__ import annotations

from types import SimpleNamespace

from eth.rlp.logs import Log

import ai_precompiles
from ai_precompiles.addresses import DATANETS, INFERENCE, MODEL_REGISTRY
from node import metrics
from node.chain.events import BlockCommitted, ChainReset, Origin
from node.sidecar_watch import AICounters, SidecarState, SidecarWatch

ME, OTHER = b"\x01" * 20, b"\x02" * 20
H = b"\x33" * 32


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_change_of_state_is_counted_once() -> None:
    watch = SidecarWatch("127.0.0.1:1")
    before = {c: sample("ailedger_sidecar_state_changes_total", change=c) for c in ("ready", "down", "back")}
    watch.observe(False, "not answering")
    assert watch.state is SidecarState.STARTING and watch.status()["reason"] == "not answering"
    for _ in range(3):
        watch.observe(True)
    assert watch.state is SidecarState.READY and watch.status()["reason"] is None
    assert sample("ailedger_sidecar_up") == 1
    watch.observe(False, "not answering")
    watch.observe(False, "not answering")
    assert watch.state is SidecarState.DOWN and sample("ailedger_sidecar_up") == 0
    watch.observe(True)
    assert watch.status()["state"] == "ready" and watch.changes == {"ready": 1, "down": 1, "back": 1}
    after = {c: sample("ailedger_sidecar_state_changes_total", change=c) for c in ("ready", "down", "back")}
    assert {c: after[c] - before[c] for c in after} == {"ready": 1, "down": 1, "back": 1}


def test_a_check_of_a_port_nobody_serves_is_not_serving() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serving, reason = SidecarWatch(f"127.0.0.1:{port}").check()
    assert serving is False and reason


def _log(address: bytes, module: str, event: str, *args: object) -> Log:
    topics, data = ai_precompiles.MODULES[module].abi.events[event].encode(*args)
    return Log(address, list(topics), data)


def test_the_counters_count_this_validators_ai_work_only() -> None:
    names = {"ailedger_ai_inferences_total": {}, "ailedger_ai_trainings_total": {},
             "ailedger_ai_verifications_total": {}, "ailedger_ai_challenges_total": {"role": "accused"}}
    committee = ("ailedger_ai_challenges_total", {"role": "committee"})
    before = {n: sample(n, **lbl) for n, lbl in names.items()} | {"committee": sample(committee[0], **committee[1])}
    logs = []
    for who in (ME, OTHER):
        logs += [
            _log(INFERENCE, "Inference", "InferenceRecorded", 1, 2, OTHER, who, H, H, H, 10, 5),
            _log(MODEL_REGISTRY, "ModelRegistry", "AdapterRegistered", 2, 1, OTHER, who, H, H, H, H),
            _log(INFERENCE, "Inference", "VerdictSubmitted", 1, who, True, 7),
            _log(INFERENCE, "Inference", "ChallengeOpened", 1, 1, who, OTHER, 10, 50, 7),
            _log(INFERENCE, "Inference", "CommitteeMember", 1, who, 7),
        ]
    # Same event signatures from another address, and this validator's address elsewhere: not counted.
    logs.append(Log(DATANETS, logs[0].topics, logs[0].data))
    logs.append(_log(INFERENCE, "Inference", "Deposited", ME, 1, 1))
    counters = AICounters(ME, ledger=None)  # type: ignore[arg-type]  # receipts come with the event
    block = SimpleNamespace(transactions=[object()])
    counters.on_chain_event(BlockCommitted(block, Origin.LOCAL, (SimpleNamespace(logs=logs),)))  # type: ignore[arg-type]
    counters.on_chain_event(ChainReset())
    counters.on_chain_event(BlockCommitted(SimpleNamespace(transactions=[]), Origin.SYNC))  # type: ignore[arg-type]
    after = {n: sample(n, **lbl) for n, lbl in names.items()} | {"committee": sample(committee[0], **committee[1])}
    assert {n: after[n] - before[n] for n in after} == {n: 1 for n in after}


def test_the_counters_read_receipts_only_when_the_bloom_names_an_ai_module() -> None:
    """A block committed without its receipts at hand (consensus, sync) is read from the ledger
    only when its bloom may hold a log of Inference or ModelRegistry: a block of transfers costs
    nothing, and one whose bloom names them is counted as before."""
    from eth_bloom import BloomFilter

    log = _log(INFERENCE, "Inference", "VerdictSubmitted", 1, ME, True, 7)
    reads: list[object] = []

    class Ledger:
        def receipts(self, block: object) -> tuple[object, ...]:
            reads.append(block)
            return (SimpleNamespace(logs=[log]),)

    counters = AICounters(ME, ledger=Ledger())  # type: ignore[arg-type]
    before = sample("ailedger_ai_verifications_total")
    transfers = SimpleNamespace(transactions=[object()], header=SimpleNamespace(bloom=int(BloomFilter.from_iterable([b"\x05" * 20]))))
    counters.on_chain_event(BlockCommitted(transfers, Origin.CONSENSUS))  # type: ignore[arg-type]
    assert reads == []
    ai = SimpleNamespace(transactions=[object()], header=SimpleNamespace(bloom=int(BloomFilter.from_iterable([INFERENCE]))))
    counters.on_chain_event(BlockCommitted(ai, Origin.CONSENSUS))  # type: ignore[arg-type]
    assert reads == [ai] and sample("ailedger_ai_verifications_total") == before + 1
