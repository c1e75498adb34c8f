"""Traces, proofs, simulations and impersonated senders on a real ledger: the bounds a
hostile caller meets, and what survives a restart."""

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie

from genesis import dev_genesis
from state import Ledger, LevelDBStore, MemoryStore
from state.impersonation import impersonated_transaction
from state.proofs import prove_account
from state.simulation import (
    MAX_BLOCKS,
    BlockOverrides,
    SimBlock,
    SimCall,
    SimulationError,
    simulate,
)
from state.tracing import (
    MAX_STEPS,
    CallTracer,
    StructLogConfig,
    StructLogTracer,
    TraceLimitExceeded,
    format_call_frame,
    run_call,
)

GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=2)
SENDER = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
LOOP = bytes.fromhex("5b600056")  # JUMPDEST; PUSH1 0; JUMP: runs until out of gas
#: mstore(0x100000, 1) then loop: a megabyte of memory at every step
BIG_MEMORY_LOOP = bytes.fromhex("600162100000525b600756")
TARGET = b"\xcc" * 20


def ledger_with(code: bytes) -> Ledger:
    ledger = Ledger(MemoryStore(), GENESIS)
    ledger.edit_state(TARGET, code=code)
    return ledger


def test_struct_logs_stop_at_the_step_limit():
    ledger = ledger_with(LOOP)
    tracer = StructLogTracer(StructLogConfig())
    try:
        run_call(ledger, ledger.head, SENDER, TARGET, b"", 0, None, None, None, tracer)
    except TraceLimitExceeded:
        pass
    else:
        raise AssertionError("an endless loop must hit the step limit")
    assert len(tracer.logs) == MAX_STEPS


def test_struct_logs_stop_at_the_size_limit_with_memory():
    ledger = ledger_with(BIG_MEMORY_LOOP)
    tracer = StructLogTracer(StructLogConfig(enable_memory=True))
    try:
        run_call(ledger, ledger.head, SENDER, TARGET, b"", 0, None, None, None, tracer)
    except TraceLimitExceeded as e:
        assert "words" in str(e)
    else:
        raise AssertionError("megabytes of memory per step must hit the size limit")
    assert len(tracer.logs) < 100


def test_a_step_limit_from_the_caller_truncates_without_error():
    ledger = ledger_with(LOOP)
    tracer = StructLogTracer(StructLogConfig(limit=10))
    run = run_call(ledger, ledger.head, SENDER, TARGET, b"", 0, 100_000, None, None, tracer)
    assert len(tracer.logs) == 10 and run.computation.is_error


def test_call_tracer_reports_an_out_of_gas_frame():
    ledger = ledger_with(LOOP)
    tracer = CallTracer()
    run = run_call(ledger, ledger.head, SENDER, TARGET, b"", 0, 50_000, None, None, tracer)
    assert tracer.root is not None
    frame = format_call_frame(tracer.root, run.gas_used, run.computation.msg.gas)
    assert frame["error"] == "out of gas" and frame["gasUsed"] == hex(50_000) and "output" not in frame


def test_proofs_verify_against_the_state_root():
    ledger = ledger_with(LOOP)
    ledger.edit_state(TARGET, storage={7: 99})
    root = ledger.state_header(ledger.head).state_root
    proof = prove_account(ledger.chain.chaindb.db, root, TARGET, [7, 8])
    account = HexaryTrie.get_from_proof(root, keccak(TARGET), [rlp.decode(n) for n in proof.proof])
    assert rlp.decode(account)[2] == proof.storage_root and proof.code_hash == keccak(LOOP)
    seven, eight = proof.storage
    value = HexaryTrie.get_from_proof(proof.storage_root, keccak((7).to_bytes(32, "big")), [rlp.decode(n) for n in seven.proof])
    assert rlp.decode(value) == b"\x63" and seven.value == 99 and eight.value == 0


def test_simulation_refuses_too_many_blocks_before_running_any():
    ledger = ledger_with(LOOP)
    blocks = [SimBlock(BlockOverrides(), {}, ())] * (MAX_BLOCKS + 1)
    try:
        simulate(ledger, ledger.head, blocks)
    except SimulationError as e:
        assert e.code == -38026
    else:
        raise AssertionError("too many blocks must be refused")


def test_simulation_chains_state_and_writes_nothing():
    ledger = ledger_with(bytes.fromhex("600160005401600055600054600052" "60206000f3"))  # slot0 += 1; return it
    head_root = ledger.state_header(ledger.head).state_root
    call = SimCall(SENDER, TARGET, b"", 0, None, None)
    out = simulate(ledger, ledger.head, [SimBlock(BlockOverrides(), {}, (call, call)), SimBlock(BlockOverrides(), {}, (call,))])
    assert [int.from_bytes(c.return_data, "big") for b in out for c in b.calls] == [1, 2, 3]
    assert out[1].header.block_number == ledger.head.block_number + 2
    assert ledger.state_header(ledger.head).state_root == head_root
    assert ledger.state_at(ledger.head).get_storage(TARGET, 0) == 0


def test_an_impersonated_sender_survives_a_restart(tmp_path):
    ledger = Ledger(LevelDBStore(tmp_path), GENESIS)
    stranger = b"\x12" * 20
    ledger.edit_state(stranger, balance=10**18)
    tx = impersonated_transaction(
        {"type": 2, "chainId": GENESIS.chain_id, "nonce": 0, "gas": 21_000, "to": b"\x34" * 20, "value": 5,
         "data": b"", "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1}, stranger,
    )
    ledger.record_impersonated(tx.hash, stranger)
    built = ledger.build_block([tx], GENESIS.timestamp + 1, b"\x00" * 20)
    assert not built.rejected and ledger.state_at(ledger.head).get_balance(b"\x34" * 20) == 5
    ledger.close()
    reopened = Ledger(LevelDBStore(tmp_path), GENESIS)
    assert reopened.block(reopened.head).transactions[0].sender == stranger
    reopened.close()
