// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Inference receipts precompile, at 0x00000000000000000000000000000000000A1003
/// @notice Requesters deposit here; a validator submits a receipt carrying the user's EIP-712
///         signed InferenceRequest, its own EIP-712 signature over the receipt, the output hash
///         and the attribution. The fee is charged from the deposit and split by the rewards module.
///         EIP-712 domain: name "ailedger", version "1", chainId, verifyingContract = this address.
interface IInference {
    /// EIP-712: InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId)
    /// The signed request binds the validator that may serve it (the receipt's `validator`
    /// argument fills it in, so this struct does not repeat it) and the price it quoted (`maxFee`).
    struct InferenceRequest {
        address user;
        uint256 adapterId;
        bytes32 promptHash;
        uint256 maxFee;
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
    }

    struct Receipt {
        uint256 id;
        address user;
        uint256 adapterId;
        bytes32 requestHash;
        bytes32 promptHash;
        bytes32 outputHash;
        uint256 fee;
        address validator;
        address submitter;
        uint256 blockNumber;
        uint256[] contributionIds;
        uint256[] weightsBp;
    }

    event Deposited(address indexed account, uint256 amount, uint256 balance);
    event Withdrawn(address indexed account, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 unlockTime);
    event InferenceRecorded(uint256 indexed receiptId, uint256 indexed adapterId, address indexed user, address validator, bytes32 requestHash, bytes32 outputHash, uint256 fee);

    function deposit() external payable;
    /// Start the lock (governance `inference.withdraw_delay` seconds) before `amount` can be
    /// withdrawn; receipts may still charge the deposit meanwhile.
    function requestWithdrawal(uint256 amount) external returns (uint256 unlockTime);
    /// Withdraw up to the requested amount once its lock is over.
    function withdraw(uint256 amount) external;
    /// EIP-712: InferenceReceipt(bytes32 requestHash,bytes32 outputHash,uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)
    function submitReceipt(InferenceRequest calldata request, bytes calldata userSignature, bytes32 outputHash, uint256[] calldata contributionIds, uint256[] calldata weightsBp, uint256 fee, address validator, bytes calldata validatorSignature) external returns (uint256 receiptId);

    function depositOf(address account) external view returns (uint256);
    function nonceUsed(address user, uint256 nonce) external view returns (bool);
    function getReceipt(uint256 receiptId) external view returns (Receipt memory);
    function receiptCount() external view returns (uint256);
    function requestDigest(InferenceRequest calldata request, address validator) external view returns (bytes32);
    function receiptDigest(bytes32 requestHash, bytes32 outputHash, uint256[] calldata contributionIds, uint256[] calldata weightsBp, uint256 fee, address validator) external view returns (bytes32);
}
