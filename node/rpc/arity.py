"""How many positional parameters each JSON-RPC method takes at most.

The dispatcher refuses a call with more with -32602 before the method runs, as anvil and
geth do (``eth_blockNumber`` with a parameter is an error, not a silent answer). Every
registered method must be listed: a unit test checks the table against the registry.
"""

from __future__ import annotations

_BY_COUNT: dict[int, tuple[str, ...]] = {
    0: (
        "web3_clientVersion", "net_version", "net_listening", "net_peerCount",
        "eth_chainId", "eth_blockNumber", "eth_syncing", "eth_mining", "eth_hashrate",
        "eth_coinbase", "eth_accounts", "eth_gasPrice", "eth_maxPriorityFeePerGas",
        "eth_blobBaseFee", "eth_newBlockFilter", "eth_newPendingTransactionFilter",
        "txpool_status", "txpool_content", "txpool_inspect",
        "evm_snapshot", "anvil_snapshot", "anvil_getAutomine", "hardhat_getAutomine",
    ),
    1: (
        "web3_sha3", "eth_sendRawTransaction", "eth_sendTransaction",
        "eth_getTransactionByHash", "eth_getTransactionReceipt", "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByNumber", "eth_getBlockTransactionCountByHash",
        "eth_getUncleCountByBlockNumber", "eth_getUncleCountByBlockHash",
        "eth_getLogs", "eth_newFilter", "eth_getFilterChanges", "eth_getFilterLogs",
        "eth_uninstallFilter", "evm_mine", "evm_revert", "anvil_revert",
        "evm_increaseTime", "anvil_increaseTime", "evm_setNextBlockTimestamp",
        "anvil_setNextBlockTimestamp", "evm_setAutomine", "anvil_setAutomine",
        "eth_getRawTransactionByHash", "anvil_impersonateAccount",
        "anvil_stopImpersonatingAccount", "hardhat_impersonateAccount",
        "hardhat_stopImpersonatingAccount", "anvil_autoImpersonateAccount", "anvil_reset",
        "hardhat_reset",
        "ai_getInferenceAncestry", "ai_finishBlob", "ai_abortBlob", "ai_listModels",
        "ai_listDatanets",
    ),
    2: (
        "eth_getBalance", "eth_getTransactionCount", "eth_getCode", "eth_sign",
        "personal_sign", "eth_signTypedData_v4", "eth_signTypedData",
        "eth_getTransactionByBlockNumberAndIndex", "eth_getTransactionByBlockHashAndIndex",
        "eth_getRawTransactionByBlockNumberAndIndex", "eth_getRawTransactionByBlockHashAndIndex",
        "eth_getUncleByBlockNumberAndIndex", "eth_getUncleByBlockHashAndIndex",
        "eth_getBlockByNumber", "eth_getBlockByHash", "anvil_mine", "hardhat_mine",
        "anvil_setBalance", "hardhat_setBalance", "anvil_setNonce", "hardhat_setNonce",
        "anvil_setCode", "hardhat_setCode", "eth_createAccessList", "eth_simulateV1",
        "debug_traceTransaction",
        "ai_getDatanet", "ai_getContribution", "ai_getLineage", "ai_getModel",
        "ai_getDeposit", "ai_getReceipt", "ai_getRewards", "ai_getProposal", "ai_putBlob", "ai_beginBlob",
    ),
    3: (
        "eth_getStorageAt", "eth_feeHistory",
        "anvil_setStorageAt", "hardhat_setStorageAt", "eth_getProof", "debug_traceCall",
        "ai_listContributions", "ai_putBlobChunk", "ai_getBlob", "ai_getTrainingSet",
    ),
    # eth_call and eth_estimateGas: request, block, state overrides, block overrides
    4: ("eth_call", "eth_estimateGas", "ai_getContributionProof"),
}

#: method name -> most positional parameters it accepts.
MAX_PARAMS: dict[str, int] = {name: n for n, names in _BY_COUNT.items() for name in names}
# Methods that take at most one optional parameter.
MAX_PARAMS.update({"ai_getParams": 1, "ai_getValidatorSet": 1})
