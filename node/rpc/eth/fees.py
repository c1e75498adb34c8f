"""``eth_`` fee methods: the suggested gas price and tip, the blob base fee, and
``eth_feeHistory`` (bounded as geth bounds it: 1,024 blocks, 100 reward percentiles).

The suggested tip is the node's own (:data:`node.chain.own_tx.NODE_TIP`), as anvil suggests; ``eth_sendTransaction`` uses
it when the request names none."""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI

from node.chain.core import ChainCore
from node.chain.own_tx import NODE_TIP
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams
from node.rpc.format import hex_quantity
from node.rpc.registry import READ, Params, args, rpc
from node.txpool import max_fee, max_tip


@rpc("eth_gasPrice", max_params=0)
def eth_gas_price(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.core.next_base_fee() + NODE_TIP)


@rpc("eth_maxPriorityFeePerGas", max_params=0)
def eth_max_priority_fee(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(NODE_TIP)


@rpc("eth_blobBaseFee", max_params=0)
def eth_blob_base_fee(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(1)


#: geth's limits on eth_feeHistory: blocks per query and reward percentiles.
MAX_FEE_HISTORY = 1024


MAX_REWARD_PERCENTILES = 100


@rpc("eth_feeHistory", max_params=3, lane=READ)
def eth_fee_history(ctx: NodeContext, params: Params) -> dict[str, Any]:
    count_raw, newest_raw, percentiles = args(params, 2, 1)
    count = p.quantity(count_raw, "0") if not isinstance(count_raw, int) else count_raw
    if count < 1:
        return {"oldestBlock": hex_quantity(0), "baseFeePerGas": [], "gasUsedRatio": [], "reward": []}
    count = min(count, MAX_FEE_HISTORY)
    newest = ctx.core.resolve(p.block_ref(newest_raw, "1")).block_number
    reward_percentiles: list[float] | None = None
    if percentiles is not None:
        if isinstance(percentiles, list) and len(percentiles) > MAX_REWARD_PERCENTILES:
            raise InvalidParams(
                f"invalid argument 2: at most {MAX_REWARD_PERCENTILES} reward percentiles"
            )
        numbers = [x for x in percentiles if isinstance(x, (int, float))] if isinstance(percentiles, list) else []
        if not isinstance(percentiles, list) or len(numbers) != len(percentiles) or any(
            not 0 <= x <= 100 for x in numbers
        ) or numbers != sorted(numbers):
            raise InvalidParams("invalid argument 2: reward percentiles must be ascending numbers in [0, 100]")
        reward_percentiles = numbers
    oldest = max(0, newest - count + 1)
    base_fees, ratios, rewards = [], [], []
    for n in range(oldest, newest + 1):
        header = ctx.core.ledger.header_by_number(n)
        assert header is not None
        base_fees.append(hex_quantity(header.base_fee_per_gas or 0))
        ratios.append(header.gas_used / header.gas_limit)
        if reward_percentiles is not None:
            rewards.append([hex_quantity(r) for r in _block_rewards(ctx.core, header, reward_percentiles)])
    from state.vm import LedgerVM

    newest_header = ctx.core.ledger.header_by_number(newest)
    assert newest_header is not None
    child = LedgerVM.create_header_from_parent(newest_header, timestamp=newest_header.timestamp + 1)
    base_fees.append(hex_quantity(child.base_fee_per_gas or 0))
    out: dict[str, Any] = {
        "oldestBlock": hex_quantity(oldest),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": [hex_quantity(1)] * len(base_fees),
        "blobGasUsedRatio": [0.0] * len(ratios),
    }
    if reward_percentiles is not None:
        out["reward"] = rewards
    return out


def _block_rewards(core: ChainCore, header: BlockHeaderAPI, percentiles: list[float]) -> list[int]:
    block = core.ledger.block(header)
    if not block.transactions:
        return [0] * len(percentiles)
    receipts = core.ledger.receipts(block)
    base = header.base_fee_per_gas
    assert base is not None  # every block of this chain has a base fee
    items = []
    previous = 0
    for tx, r in zip(block.transactions, receipts, strict=True):
        tip = min(max_tip(tx), max_fee(tx) - base) if hasattr(tx, "max_fee_per_gas") else tx.gas_price - base
        items.append((tip, r.gas_used - previous))
        previous = r.gas_used
    items.sort()
    total = sum(g for _, g in items) or 1
    out = []
    for pct in percentiles:
        threshold = total * pct / 100
        acc = 0
        for tip, gas in items:
            acc += gas
            if acc >= threshold:
                out.append(tip)
                break
        else:
            out.append(items[-1][0])
    return out
