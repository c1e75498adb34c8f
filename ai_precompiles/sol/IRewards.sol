// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Rewards precompile, at 0x00000000000000000000000000000000000A1004
/// @notice Balances from inference fee splits, slashes and challenge bonds. A receipt's split is
///         first pending (RewardPending), until the receipt settles after its challenge window
///         (RewardAccrued: claimable) or an upheld challenge reverses it (RewardRevoked).
///         role: 0 contributor, 1 adapter author, 2 lineage author, 3 validator, 4 treasury,
///         5 challenger (bond back and reward), 6 trainer (a builder's training fee). receiptId 0:
///         not from a receipt's split (a slash, a bond or a training fee; see the Inference,
///         Staking and ModelRegistry events of the same transaction).
interface IRewards {
    event RewardPending(address indexed account, uint256 indexed receiptId, uint8 indexed role, uint256 amount);
    event RewardAccrued(address indexed account, uint256 indexed receiptId, uint8 indexed role, uint256 amount);
    event RewardRevoked(address indexed account, uint256 indexed receiptId, uint8 indexed role, uint256 amount);
    /// A contributor share released while its account's rewards are paused (penalty score at
    /// datanet.penalty_threshold): credited to the treasury instead (a RewardAccrued with role 4 follows).
    event RewardForfeited(address indexed account, uint256 indexed receiptId, uint256 amount);
    event RewardClaimed(address indexed account, uint256 amount);

    function claim() external returns (uint256 amount);
    function claimable(address account) external view returns (uint256);
    /// Wei held for `account` by receipts not yet settled (nor reversed).
    function pending(address account) external view returns (uint256);
    function totalEarned(address account) external view returns (uint256);
    function totalClaimable() external view returns (uint256);
    function totalPending() external view returns (uint256);
}
