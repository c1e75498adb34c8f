// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Governance precompile, at 0x00000000000000000000000000000000000A1006
/// @notice Stake-weighted proposals: set one named protocol parameter within its bounds (kind 0),
///         approve an adapter for deployment against a bond (kind 1), or schedule a named
///         upgrade at a height (kind 2). Voting power is the voter's stake effective in the
///         proposal's snapshot epoch.
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
        uint256 kind;
        uint256 bond;
        uint256 quorumBp;
        uint256 thresholdBp;
        string info;
        bool closed;
    }

    struct ScheduledUpgrade {
        string name;
        uint256 height;
        string info;
        uint256 proposalId;
    }

    event ProposalCreated(uint256 indexed proposalId, address indexed proposer, string param, uint256 value, uint256 endBlock);
    event VoteCast(uint256 indexed proposalId, address indexed voter, bool support, uint256 weight);
    event ProposalExecuted(uint256 indexed proposalId, string param, uint256 oldValue, uint256 newValue);
    event ApprovalPolicySet(uint256 indexed kind, uint256 indexed subjectId, bool required);
    event ModelProposed(uint256 indexed proposalId, address indexed proposer, uint256 indexed adapterId, uint256 bond, uint256 endBlock);
    event ModelApproved(uint256 indexed proposalId, uint256 indexed adapterId, address proposer, uint256 bondReturned);
    event ProposalClosed(uint256 indexed proposalId, uint256 bondReturned, uint256 bondSlashed);
    event UpgradeProposed(uint256 indexed proposalId, address indexed proposer, string name, uint256 height, string info);
    event UpgradeScheduled(uint256 indexed proposalId, string name, uint256 height, string info);

    function propose(string calldata param, uint256 value) external returns (uint256 proposalId);
    function vote(uint256 proposalId, bool support) external;
    function execute(uint256 proposalId) external;
    /// @notice The author of an adapter whose policy requires approval proposes it; msg.value is the bond.
    function proposeModel(uint256 adapterId) external payable returns (uint256 proposalId);
    function proposeUpgrade(string calldata name, uint256 height, string calldata info) external returns (uint256 proposalId);
    /// @notice Close a proposal that did not pass; returns whether a model proposal's bond was returned.
    function closeProposal(uint256 proposalId) external returns (bool bondReturned);
    /// @notice kind 1: datanet (its owner), kind 2: base model (its registrant).
    function setApprovalPolicy(uint256 kind, uint256 subjectId, bool required) external;

    function getProposal(uint256 proposalId) external view returns (Proposal memory);
    function hasVotedOn(uint256 proposalId, address voter) external view returns (bool);
    function getParam(string calldata param) external view returns (uint256);
    function paramBounds(string calldata param) external view returns (uint256 min, uint256 max);
    function proposalCount() external view returns (uint256);
    function modelStatus(uint256 adapterId) external view returns (bool requiresApproval, bool approved, uint256 approvedBy, uint256 openProposal);
    function approvalPolicy(uint256 kind, uint256 subjectId) external view returns (bool required, uint256 sinceBlock);
    function getUpgrade(string calldata name) external view returns (ScheduledUpgrade memory);
    function upgradeCount() external view returns (uint256);
}
