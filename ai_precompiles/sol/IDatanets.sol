// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Datanets precompile, at 0x00000000000000000000000000000000000A1001
/// @notice Domain data networks: contributions (hash on chain, bytes in the blob store),
///         curation to a quorum, and numbered versions (Merkle roots over accepted contributions).
interface IDatanets {
    struct Datanet {
        uint256 id;
        address owner;
        string name;
        string domain;
        string descriptionUri;
        string licensePolicy;
        address[] curators;
        uint256 quorum;
        uint256 maxContributionSize;
        uint256 contributionCount;
        uint256 acceptedCount;
        uint256 versionCount;
        uint256 createdBlock;
    }

    /// status: 0 pending, 1 accepted, 2 rejected
    struct Contribution {
        uint256 id;
        uint256 datanetId;
        address contributor;
        uint256 blockNumber;
        uint256 timestamp;
        bytes32 contentHash;
        uint256 size;
        string license;
        bytes32 metadataHash;
        uint8 status;
        uint256 approvals;
        uint256 rejections;
        uint16 reasonCode;
        uint256 acceptedIndex;
        /// restriction bits of its license: 1 non-commercial, 2 no derivatives (0: unrestricted)
        uint256 terms;
        /// block in which its contributor withdrew consent (0: consent stands)
        uint256 withdrawnBlock;
        /// accepted and withdrawn: its rank among the datanet's withdrawals (versions published
        /// with withdrawnTotal >= it leave it out)
        uint256 withdrawnSeq;
    }

    struct Version {
        uint256 datanetId;
        uint256 version;
        bytes32 root;
        uint256 count;
        uint256 blockNumber;
        /// accepted contributions of the datanet withdrawn when it was published
        uint256 withdrawnTotal;
        /// of its first `count`, those withdrawn when it was published: its training set leaves them out
        uint256 excluded;
    }

    /// What a datanet asks of each contribution (set by its owner)
    struct ContributionPolicy {
        uint256 minBond;
        bool requireSketch;
    }

    /// bondStatus: 0 no bond, 1 held, 2 returned, 3 slashed; groupId 0: its own group
    struct Quality {
        bool sketched;
        uint256 nearDuplicateOf;
        uint256 similarityBp;
        uint256 groupId;
        uint256 bond;
        uint8 bondStatus;
        uint256 adversarialVotes;
    }

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, uint256 quorum);
    event ContributionCommitted(bytes32 indexed commitment, uint256 blockNumber);
    event ContributionSubmitted(uint256 indexed datanetId, uint256 indexed contributionId, address indexed contributor, bytes32 contentHash, uint256 size);
    event ContributionCurated(uint256 indexed contributionId, address indexed curator, bool approve, uint16 reasonCode);
    event ContributionAccepted(uint256 indexed datanetId, uint256 indexed contributionId, uint256 acceptedIndex);
    event ContributionRejected(uint256 indexed datanetId, uint256 indexed contributionId, uint16 reasonCode);
    event ContributionPolicySet(uint256 indexed datanetId, uint256 minBond, bool requireSketch);
    event ContributionBonded(uint256 indexed contributionId, address indexed contributor, uint256 amount);
    event NearDuplicateFlagged(uint256 indexed datanetId, uint256 indexed contributionId, uint256 indexed originalId, uint256 groupId, uint256 similarityBp);
    event BondReturned(uint256 indexed contributionId, address indexed contributor, uint256 amount);
    event BondSlashed(uint256 indexed contributionId, address indexed contributor, uint256 amount);
    event ContributorPenalized(address indexed contributor, uint256 indexed contributionId, uint256 score);
    /// The contributor withdrew consent (final): a version covering it cannot be trained on, and
    /// adapters already trained on it count it (accepted: whether it was in the accepted list).
    event ConsentWithdrawn(uint256 indexed datanetId, uint256 indexed contributionId, address indexed contributor, bool accepted, uint256 acceptedIndex);
    event VersionPublished(uint256 indexed datanetId, uint256 indexed version, bytes32 root, uint256 count);

    function createDatanet(string calldata name, string calldata domain, string calldata descriptionUri, string calldata licensePolicy, address[] calldata curators, uint256 quorum, uint256 maxContributionSize) external returns (uint256 datanetId);
    /// @notice Commit to a contribution before making it (its hash stays hidden until then):
    ///         commitment = contributionCommitment(contributor, datanetId, contentHash, size, license, metadataHash, salt).
    ///         The first block a commitment is seen in is kept; committing it again changes nothing.
    function commitContribution(bytes32 commitment) external;
    /// @notice Record a contribution by msg.sender; it spends msg.sender's commitment to exactly
    ///         these fields and salt, made in an earlier block.
    ///         license: an allow-listed SPDX id (any case), e.g. "CC-BY-4.0" or "CC-BY-NC-4.0"; its
    ///         restrictions (non-commercial, no derivatives) follow from the id.
    function contribute(uint256 datanetId, bytes32 contentHash, uint256 size, string calldata license, bytes32 metadataHash, bytes32 salt) external returns (uint256 contributionId);
    /// @notice Owner only: what each later contribution must carry (a bond of at least minBond wei,
    ///         its MinHash sketch). A datanet with a policy takes contributions only through contributeBonded.
    function setContributionPolicy(uint256 datanetId, uint256 minBond, bool requireSketch) external;
    /// @notice contribute(), bonding msg.value and carrying the blob's 256-byte MinHash sketch (empty: none).
    ///         A sketch close to an earlier contribution's flags the new one a near duplicate of it.
    function contributeBonded(uint256 datanetId, bytes32 contentHash, uint256 size, string calldata license, bytes32 metadataHash, bytes32 salt, bytes calldata sketch) external payable returns (uint256 contributionId);
    /// @notice reasonCode 1 (adversarial) on a rejection: enough of them slash the bond and raise the penalty score.
    function curate(uint256 contributionId, bool approve, uint16 reasonCode) external;
    /// @notice Owner only, when something was accepted or withdrawn since the last version.
    function publishVersion(uint256 datanetId) external returns (uint256 version, bytes32 root);

    function getDatanet(uint256 datanetId) external view returns (Datanet memory);
    function getContribution(uint256 contributionId) external view returns (Contribution memory);
    function getVersion(uint256 datanetId, uint256 version) external view returns (Version memory);
    function acceptedContributionAt(uint256 datanetId, uint256 index) external view returns (uint256 contributionId);
    function hasVoted(uint256 contributionId, address curator) external view returns (bool);
    function datanetCount() external view returns (uint256);
    function contributionCommitment(address contributor, uint256 datanetId, bytes32 contentHash, uint256 size, string calldata license, bytes32 metadataHash, bytes32 salt) external view returns (bytes32);
    /// @return blockNumber the block the commitment was made in (0: none, or spent)
    function commitmentBlock(bytes32 commitment) external view returns (uint256 blockNumber);
    function contributionCount() external view returns (uint256);
    function getContributionPolicy(uint256 datanetId) external view returns (ContributionPolicy memory);
    function getQuality(uint256 contributionId) external view returns (Quality memory);
    function getSketch(uint256 contributionId) external view returns (bytes memory);
    function penaltyScore(address contributor) external view returns (uint256);
    /// @notice Withdraw consent for msg.sender's contribution (final).
    function withdrawConsent(uint256 contributionId) external;
    /// @return terms the OR of the restriction bits of the contributions a version covers
    function versionTerms(uint256 datanetId, uint256 version) external view returns (uint256 terms);
    /// @return count contributions of the version's training set withdrawn after it was published
    ///         (a version with any cannot be trained on; publish a newer one, which leaves them out)
    function withdrawnInVersion(uint256 datanetId, uint256 version) external view returns (uint256 count);
}
