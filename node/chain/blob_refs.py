"""Which blobs a transaction names: the bytes the chain holds only by hash, which every node keeps
so that anyone can read and re-run what the chain records (DESIGN.md: adapters, prompts and
outputs are network data).

- a contribution: its content;
- an adapter registration: its weights, attribution index, training manifest and hyper-parameters;
- a merge registration: its weights, attribution index and manifest (docs/merges.md);
- an inference receipt: its prompt, output and the engine profile it pins.

Both ways in count: the native transaction types and an ABI call straight to the precompile
(from a contract's inner call the node cannot see the arguments; the receipt's events still
name the hashes, and ``ai_verifyReceipt`` says which blob is missing).
"""

from __future__ import annotations

from typing import Any

from eth.abc import SignedTransactionAPI

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from state.native import native_payload

#: (module, function) -> the arguments that are blob hashes: top-level ABI names, then the
#: snake_case field of a struct argument.
REFS: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("Datanets", "contribute"): (("contentHash",),),
    ("Datanets", "contributeBonded"): (("contentHash",),),
    ("ModelRegistry", "registerAdapter"): (("spec", "weights_hash"), ("spec", "attribution_index_hash"),
                                           ("spec", "manifest_hash"), ("spec", "hyper_params_hash")),
    ("ModelRegistry", "registerTrainedAdapter"): (("spec", "weights_hash"), ("spec", "attribution_index_hash"),
                                                  ("spec", "manifest_hash"), ("spec", "hyper_params_hash")),
    ("ModelRegistry", "registerMergedAdapter"): (("weightsHash",), ("attributionIndexHash",), ("manifestHash",)),
    ("Inference", "submitReceipt"): (("request", "prompt_hash"), ("outputHash",), ("engineProfile",)),
}
_MODULE_AT = {address: name for name, address in BY_NAME.items()}
_ZERO = b"\x00" * 32


def _call_of(tx: SignedTransactionAPI) -> tuple[str, str, dict[str, Any]] | None:
    """(module, function, arguments by ABI name) of a call to an AI precompile, else None."""
    inner = native_payload(tx)
    if inner is not None:
        module, name = inner.module, inner.function
        fn = ai_precompiles.MODULES[module].abi.by_name[name]
        data = fn.encode_args(*inner.abi_args())
    else:
        at = _MODULE_AT.get(bytes(tx.to)) if tx.to else None
        if at is None:
            return None
        module, data = at, bytes(tx.data)
        found = ai_precompiles.MODULES[module].abi.functions.get(data[:4])
        if found is None:
            return None
        fn = found
    if (module, fn.name) not in REFS:
        return None
    try:
        values = fn.decode_args(data[4:])
    except Exception:
        return None  # the precompile reverts it with the decoding error
    return module, fn.name, {p["name"]: v for p, v in zip(fn.item["inputs"], values, strict=True)}


def blob_refs(tx: SignedTransactionAPI) -> tuple[bytes, ...]:
    """The blob hashes ``tx`` names, distinct, zero hashes (nothing recorded) left out."""
    call = _call_of(tx)
    if call is None:
        return ()
    module, name, args = call
    out: list[bytes] = []
    for path in REFS[(module, name)]:
        value: Any = args
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bytes) and len(value) == 32 and value != _ZERO and value not in out:
            out.append(value)
    return tuple(out)
