// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Inference receipts precompile, at 0x00000000000000000000000000000000000A1003
/// @notice Requesters deposit here; a validator submits a receipt carrying the user's EIP-712
///         signed InferenceRequest, its own EIP-712 signature over the receipt, the output hash,
///         its engine profile and the attribution. The fee is charged from the deposit and its
///         split stays pending (Rewards.pending) for `inference.challenge_window` blocks; then
///         anyone may `settle` the receipt, which makes the split claimable. Within the window
///         anyone may `challenge` the receipt with a bond: a committee of other validators, drawn
///         stake-weighted, re-runs it and submits verdicts; more than 2/3 of its power decides.
///         Upheld: the validator is slashed and jailed, the payouts reversed, the user refunded,
///         the challenger rewarded. Rejected: the bond goes to the validator and the treasury.
///         Undecided by the deadline: the bond returns and the receipt stands.
///         EIP-712 domain: name "ailedger", version "1", chainId, verifyingContract = this address.
///         Hashes are keccak-256 of the bytes: prompt, output and engine profile are blob ids.
interface IInference {
    /// EIP-712: InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId,bool commercial)
    /// The signed request binds the validator that may serve it (the receipt's `validator`
    /// argument fills it in, so this struct does not repeat it), the price it quoted (`maxFee`)
    /// and the most tokens it may generate, decoding greedily (`maxTokens`, at most the
    /// governance parameter `inference.max_tokens`). `commercial` declares the use: a
    /// commercial request on an adapter whose effective licence is non-commercial is refused.
    struct InferenceRequest {
        address user;
        uint256 adapterId;
        bytes32 promptHash;
        uint256 maxTokens;
        uint256 maxFee;
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
        bool commercial;
    }

    /// status: 0 pending (payouts held until releaseBlock), 1 challenged, 2 settled (payouts
    /// claimable), 3 reversed (an upheld challenge: payouts undone, fee refunded).
    /// weightsHash and baseModelHash are copied from the registry when the receipt is recorded;
    /// splitBp packs the reward shares then in force (contributors | author << 16 |
    /// lineage << 32 | validator << 48, basis points) and treasury the treasury then, so the
    /// split settles (or is reversed) exactly as it was held.
    struct Receipt {
        uint256 id;
        address user;
        uint256 adapterId;
        bytes32 requestHash;
        bytes32 promptHash;
        bytes32 outputHash;
        uint256 maxTokens;
        bytes32 engineProfile;
        bytes32 weightsHash;
        bytes32 baseModelHash;
        uint256 fee;
        address validator;
        address submitter;
        uint256 blockNumber;
        uint256[] contributionIds;
        uint256[] weightsBp;
        uint256 releaseBlock;
        uint8 status;
        uint256 challengeId;
        uint256 splitBp;
        address treasury;
        /// the use the request declared
        bool commercial;
        /// at record time, a model of the adapter's lineage had trained on a contribution whose
        /// contributor withdrew consent
        bool consentWithdrawn;
    }

    /// status: 1 open, 2 upheld, 3 rejected, 4 undecided (no decision by the deadline).
    struct Challenge {
        uint256 id;
        uint256 receiptId;
        address challenger;
        address accused;
        uint256 bond;
        uint256 openedBlock;
        uint256 deadline;
        uint256 epoch;
        address[] members;
        uint256 totalPower;
        uint256 upheldPower;
        uint256 rejectedPower;
        uint8 status;
        uint256 resolvedBlock;
        uint256 slashed;
    }

    event Deposited(address indexed account, uint256 amount, uint256 balance);
    event Withdrawn(address indexed account, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 unlockTime);
    event InferenceRecorded(uint256 indexed receiptId, uint256 indexed adapterId, address indexed user, address validator, bytes32 requestHash, bytes32 promptHash, bytes32 outputHash, uint256 fee, uint256 releaseBlock);
    event ReceiptSettled(uint256 indexed receiptId, uint256 fee);
    event ReceiptReversed(uint256 indexed receiptId, address indexed user, uint256 refund);
    event ChallengeOpened(uint256 indexed challengeId, uint256 indexed receiptId, address indexed accused, address challenger, uint256 bond, uint256 deadline, uint256 totalPower);
    event CommitteeMember(uint256 indexed challengeId, address indexed member, uint256 power);
    event VerdictSubmitted(uint256 indexed challengeId, address indexed member, bool upheld, uint256 power);
    /// outcome: 2 upheld, 3 rejected, 4 undecided (as Challenge.status)
    event ChallengeResolved(uint256 indexed challengeId, uint256 indexed receiptId, uint8 indexed outcome, uint256 slashed);
    event VerdictMissed(address indexed member, uint256 indexed challengeId, uint256 missed);

    function deposit() external payable;
    /// Start the lock (governance `inference.withdraw_delay` seconds) before `amount` can be
    /// withdrawn; receipts may still charge the deposit meanwhile.
    function requestWithdrawal(uint256 amount) external returns (uint256 unlockTime);
    /// Withdraw up to the requested amount once its lock is over.
    function withdraw(uint256 amount) external;
    /// EIP-712: InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)
    function submitReceipt(InferenceRequest calldata request, bytes calldata userSignature, bytes32 outputHash, bytes32 engineProfile, uint256[] calldata contributionIds, uint256[] calldata weightsBp, uint256 fee, address validator, bytes calldata validatorSignature) external returns (uint256 receiptId);
    /// Settle every listed receipt (at most 64) that is pending and whose challenge window is
    /// over: its split becomes claimable. Others are skipped; anyone may call.
    function settle(uint256[] calldata receiptIds) external returns (uint256 settled);
    /// Challenge a pending receipt before its releaseBlock, sending exactly
    /// `inference.challenge_bond` wei; draws the committee. One challenge per receipt.
    function challenge(uint256 receiptId) external payable returns (uint256 challengeId);
    /// A committee member's verdict (true: the receipt lies), by the challenge's deadline.
    function submitVerdict(uint256 challengeId, bool upheld) external;
    /// Resolve an open challenge after its deadline: undecided, the bond returns and the
    /// receipt settles; members that gave no verdict are counted as missing one.
    function resolve(uint256 challengeId) external;

    function depositOf(address account) external view returns (uint256);
    function nonceUsed(address user, uint256 nonce) external view returns (bool);
    function getReceipt(uint256 receiptId) external view returns (Receipt memory);
    function receiptCount() external view returns (uint256);
    function getChallenge(uint256 challengeId) external view returns (Challenge memory);
    function challengeCount() external view returns (uint256);
    /// `member`'s power on the committee of `challengeId` (its stake in the challenge's epoch; 0
    /// when it is not on it).
    function committeePower(uint256 challengeId, address member) external view returns (uint256);
    /// The verdict `member` gave: 0 none, 1 upheld, 2 rejected.
    function verdictOf(uint256 challengeId, address member) external view returns (uint8);
    /// Verdicts `member` failed to give since its last jail.
    function missedVerdicts(address member) external view returns (uint256);
    function requestDigest(InferenceRequest calldata request, address validator) external view returns (bytes32);
    function receiptDigest(bytes32 requestHash, bytes32 outputHash, bytes32 engineProfile, uint256[] calldata contributionIds, uint256[] calldata weightsBp, uint256 fee, address validator) external view returns (bytes32);
}
