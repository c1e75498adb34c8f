// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Governance precompile, at 0x00000000000000000000000000000000000A1006
/// @notice Stake-weighted proposals to set one named protocol parameter within its bounds.
///         Voting power is the voter's stake effective in the proposal's snapshot epoch.
interface IGovernance {
    struct Proposal {
        uint256 id;
        address proposer;
        string param;
        uint256 value;
        uint256 snapshotEpoch;
        uint256 startBlock;
        uint256 endBlock;
        uint256 executableBlock;
        uint256 yesVotes;
        uint256 noVotes;
        uint256 totalPower;
        bool executed;
    }

    event ProposalCreated(uint256 indexed proposalId, address indexed proposer, string param, uint256 value, uint256 endBlock);
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint256 weight);
    event ProposalExecuted(uint256 indexed proposalId, string param, uint256 oldValue, uint256 newValue);

    function propose(string calldata param, uint256 value) external returns (uint256 proposalId);
    function vote(uint256 proposalId, bool support) external;
    function execute(uint256 proposalId) external;

    function getProposal(uint256 proposalId) external view returns (Proposal memory);
    function hasVotedOn(uint256 proposalId, address voter) external view returns (bool);
    function getParam(string calldata param) external view returns (uint256);
    function paramBounds(string calldata param) external view returns (uint256 min, uint256 max);
    function proposalCount() external view returns (uint256);
}
