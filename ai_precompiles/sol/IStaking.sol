// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Staking precompile, at 0x00000000000000000000000000000000000A1005
/// @notice Stakes change voting power from the next epoch on; unstaked amounts wait an unbonding
///         delay. The validator set of an epoch is the largest stakes at or above the minimum.
///         Anyone may submit double-sign evidence (the RLP of two conflicting signed votes): the
///         offender loses staking.slash_fraction_bp of its stake to the treasury and is jailed.
interface IStaking {
    event Staked(address indexed account, uint256 amount, uint256 stake, uint256 effectiveEpoch);
    event Unstaked(address indexed account, uint256 amount, uint256 stake, uint256 releaseBlock);
    event UnbondedWithdrawn(address indexed account, uint256 amount);
    event Slashed(address indexed validator, uint256 height, uint256 amount);
    event Jailed(address indexed validator, uint256 height, uint256 releaseBlock);
    event Unjailed(address indexed validator, uint256 stake);

    function stake() external payable;
    function unstake(uint256 amount) external;
    function withdrawUnbonded() external returns (uint256 amount);
    function submitEvidence(bytes calldata evidence) external returns (uint256 amount);
    function unjail() external;

    function stakeOf(address account) external view returns (uint256);
    function unbondingOf(address account) external view returns (uint256 amount, uint256 releaseBlock);
    function currentEpoch() external view returns (uint256);
    function epochOf(uint256 blockNumber) external view returns (uint256);
    function votingPower(address account, uint256 epoch) external view returns (uint256);
    function jailedUntil(address account) external view returns (uint256 releaseBlock);
    function isPunished(address validator, uint256 height) external view returns (bool);
    function getValidatorSet(uint256 epoch) external view returns (address[] memory validators, uint256[] memory powers);
}
