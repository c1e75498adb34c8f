// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Model registry precompile, at 0x00000000000000000000000000000000000A1002
/// @notice Base models and LoRA adapters with their lineage: parent, datanet versions, the Merkle
///         root of the exact contribution set, hyper-parameters, and the keccak-256 (blob ids)
///         of the adapter's weights, attribution index and training manifest.
interface IModelRegistry {
    /// kind: 1 base model, 2 adapter. Base models have parentId 0 and no datanet versions.
    struct Model {
        uint256 id;
        uint8 kind;
        uint256 parentId;
        uint256 baseModelId;
        uint256 depth;
        address author;
        address validator;
        bytes32 weightsHash;
        bytes32 configHash;
        bytes32 tokenizerHash;
        bytes32 hyperParamsHash;
        bytes32 attributionIndexHash;
        bytes32 manifestHash;
        bytes32 contributionRoot;
        string license;
        /// retired by its author: no new children; receipts until receiptsUntil
        bool retired;
        uint256 createdBlock;
        uint256[] datanetIds;
        uint256[] datanetVersions;
        uint256[] children;
        /// when retired: block time from which it takes no inference receipts (0 while active)
        uint256 receiptsUntil;
    }

    struct AdapterSpec {
        uint256 parentId;
        uint256[] datanetIds;
        uint256[] datanetVersions;
        bytes32 contributionRoot;
        bytes32 hyperParamsHash;
        bytes32 weightsHash;
        bytes32 attributionIndexHash;
        /// keccak-256 of the training manifest (the whole recipe); zero when none is recorded
        bytes32 manifestHash;
        address validator;
        string license;
    }

    event BaseModelRegistered(uint256 indexed modelId, address indexed author, bytes32 weightsHash, bytes32 configHash, bytes32 tokenizerHash);
    event AdapterRegistered(uint256 indexed adapterId, uint256 indexed parentId, address indexed author, address validator, bytes32 weightsHash, bytes32 contributionRoot, bytes32 attributionIndexHash, bytes32 manifestHash);
    event AdapterRetired(uint256 indexed adapterId, address indexed author);

    function registerBaseModel(bytes32 weightsHash, bytes32 configHash, bytes32 tokenizerHash, string calldata license) external returns (uint256 modelId);
    function registerAdapter(AdapterSpec calldata spec) external returns (uint256 adapterId);
    function retireAdapter(uint256 adapterId) external;

    function getModel(uint256 modelId) external view returns (Model memory);
    /// @return path model ids from modelId back to its base model (modelId first)
    function getLineage(uint256 modelId) external view returns (uint256[] memory path);
    function inLineage(uint256 adapterId, uint256 contributionId) external view returns (bool);
    function modelCount() external view returns (uint256);
}
