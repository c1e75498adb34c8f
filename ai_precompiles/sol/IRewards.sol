// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Rewards precompile, at 0x00000000000000000000000000000000000A1004
/// @notice Claimable balances accrued from inference fee splits. role: 0 contributor, 1 adapter
///         author, 2 lineage author, 3 validator, 4 treasury.
interface IRewards {
    event RewardAccrued(address indexed account, uint256 indexed receiptId, uint8 indexed role, uint256 amount);
    event RewardClaimed(address indexed account, uint256 amount);

    function claim() external returns (uint256 amount);
    function claimable(address account) external view returns (uint256);
    function totalEarned(address account) external view returns (uint256);
    function totalClaimable() external view returns (uint256);
}
