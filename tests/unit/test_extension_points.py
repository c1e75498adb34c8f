"""docs/architecture.md's promise, tried: a new precompile, native transaction type and p2p
protocol each take one new module and one registration line, and then work through the real
code path (the VM under eth_call, the chain's transaction decoder and block builder, two
libp2p hosts). The fourth extension point, a JSON-RPC namespace, is tried in
``tests/unit/node/rpc/test_registry.py``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import rlp
import trio
from eth_abi import decode
from eth_utils import keccak
from rlp.sedes import big_endian_int

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import Ledger, MemoryStore, decode_transaction
from state.native import _COMMON_HEAD, _SIGNATURE, NATIVE_TYPES, NativeTransaction, native_type
from state.vm import LedgerTransactionBuilder

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = derive_accounts(DEV_MNEMONIC, 1)[0]

#: The toy precompile's module, as it would sit in ai_precompiles/toy.py.
TOY_MODULE = '''
"""A toy precompile: doubles a number."""

from ai_precompiles.abi import parse
from ai_precompiles.dispatch import Precompile

TOY = (0xA10EE).to_bytes(20, "big")
ABI = [{"type": "function", "name": "double", "stateMutability": "view",
        "inputs": [{"name": "x", "type": "uint256"}], "outputs": [{"name": "", "type": "uint256"}]}]

PRECOMPILE = Precompile("Toy", TOY, {"double": lambda ctx, x: 2 * x}, abi=parse("Toy", ABI))
'''


def test_a_new_precompile_is_one_module_and_one_line(tmp_path: Path) -> None:
    (tmp_path / "toy.py").write_text(TOY_MODULE)
    # A fresh process: the package's precompile table is built once, at first use.
    script = textwrap.dedent(f"""
        import ai_precompiles
        from ai_precompiles import addresses
        ai_precompiles.__path__.append({str(tmp_path)!r})  # the module (ai_precompiles/toy.py in the tree)
        addresses.BY_NAME["Toy"] = (0xA10EE).to_bytes(20, "big")  # the one registration line
        from genesis import dev_genesis
        from state import Ledger, MemoryStore
        ledger = Ledger(MemoryStore(), dev_genesis(accounts=1))
        data = bytes.fromhex({keccak(text="double(uint256)")[:4].hex()!r}) + (21).to_bytes(32, "big")
        result = ledger.execute_call(ledger.head, b"\\x11" * 20, addresses.BY_NAME["Toy"], data, 0, 1_000_000)
        print(result.success, int.from_bytes(result.output, "big"))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "42"]


def test_a_new_native_transaction_type_is_one_class_and_one_decorator() -> None:
    class ToyDatanetTransaction(NativeTransaction):
        """Creates a datanet with just a name and a quorum (``Datanets.createDatanet``)."""

        _type_id = 0x6E
        module = "Datanets"
        function = "createDatanet"
        rpc_name = "toyDatanet"
        payload_fields = [("name", rlp.sedes.binary), ("quorum", big_endian_int)]
        fields = _COMMON_HEAD + payload_fields + _SIGNATURE

        def abi_args(self) -> tuple[Any, ...]:
            me = ACCOUNT.address
            return (bytes(self.name).decode(), "toys", "", "CC-BY-4.0", [me], self.quorum, 1024)

    try:
        native_type(ToyDatanetTransaction)  # the one registration line (a decorator in the tree)
        genesis = dev_genesis(accounts=1)
        ledger = Ledger(MemoryStore(), genesis)
        tx = ToyDatanetTransaction.sign(
            ACCOUNT.private_key, chain_id=genesis.chain_id, nonce=0, max_priority_fee_per_gas=10**9,
            max_fee_per_gas=10**11, gas=1_000_000, name=b"toy datanet", quorum=1)
        raw = bytes(LedgerTransactionBuilder.wrap_native(tx).encode())
        assert raw[0] == 0x6E
        decoded = decode_transaction(raw)  # what eth_sendRawTransaction and a block do
        assert decoded.hash == LedgerTransactionBuilder.wrap_native(tx).hash
        built = ledger.build_block([decoded], genesis.timestamp + 1, b"\x00" * 20)
        assert [t.hash for t in built.block.transactions] == [decoded.hash]
        assert built.receipts[0].state_root == b"\x01", built.computations[0].error
        count = ledger.execute_call(ledger.head, b"\x11" * 20, tx.to, keccak(text="datanetCount()")[:4], 0, 10**6)
        assert decode(["uint256"], count.output) == (1,)
    finally:
        NATIVE_TYPES.pop(0x6E, None)


def test_a_new_p2p_protocol_is_one_handler_and_one_line(tmp_path: Path) -> None:
    from p2p.host import P2PConfig, P2PHost
    from p2p.wire import FrameReader, encode_frame
    from tests.integration.p2p.test_host import GENESIS, StubChain, wait_until

    protocol = "/ailedger/toy-echo/1"

    async def serve(peer: str, stream: Any) -> None:  # the module: its handler and its caps
        frame = await FrameReader(stream, 64).one()
        await stream.write(encode_frame(b"echo:" + frame))
        await stream.close()

    async def main() -> None:
        hosts = [P2PHost(P2PConfig(tmp_path / f"{n}.key", port=0), StubChain(1, GENESIS), 1, GENESIS)
                 for n in ("a", "b")]
        hosts[0].add_protocol(protocol, serve)  # the one registration line
        async with trio.open_nursery() as nursery:
            await nursery.start(hosts[0].run)
            hosts[1].config.peers = [hosts[0].listen_addr]
            await nursery.start(hosts[1].run)
            await wait_until(lambda: hosts[0].peer_id in hosts[1].peers)
            assert await hosts[1].request(hosts[0].peer_id, protocol, b"hello") == b"echo:hello"
            nursery.cancel_scope.cancel()

    trio.run(main)

