// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Model registry precompile, at 0x00000000000000000000000000000000000A1002
/// @notice Base models and LoRA adapters with their lineage: parent, datanet versions, the Merkle
///         root of the exact contribution set, hyper-parameters, and the keccak-256 (blob ids)
///         of the adapter's weights, attribution index and training manifest. A model builder
///         without a sidecar asks a validator to train: the validator registers the adapter
///         with registerTrainedAdapter, carrying the builder's signed TrainingRequest, and is
///         paid from the builder's inference deposit; the builder is the adapter's author.
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
        /// effective licence: restriction bits of its whole lineage (1 non-commercial, 2 no
        /// derivatives), the OR of its parent's and of its training contributions'; set at registration
        uint256 licenseTerms;
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

    /// What a model builder signs (EIP-712, domain "ailedger" version "1", verifyingContract this
    /// precompile): train an adapter on parentId over exactly these datanet versions with the
    /// recipe whose keccak-256 is hyperParamsHash, register it under license with the builder as
    /// author, for at most maxFee wei from the builder's Inference deposit, before deadline (unix s).
    struct TrainingRequest {
        address builder;
        address validator;
        uint256 parentId;
        uint256[] datanetIds;
        uint256[] datanetVersions;
        bytes32 hyperParamsHash;
        string license;
        uint256 maxFee;
        uint256 nonce;
        uint256 deadline;
        uint256 chainId;
    }

    /// A merge of 2..16 adapters on one base model (peft's add_weighted_adapter): method 1 linear,
    /// 2 ties, 3 dare_linear; weightsBp[i] is parentIds[i]'s merge weight (1..10000 bp of 1.0);
    /// densityBp the fraction of each delta TIES/DARE keep (0 for linear); seed DARE's drop mask
    /// seed (0 otherwise). Its keccak-256 (abi.encode of the struct) is the merge's recipe hash.
    struct MergeRecipe {
        uint256[] parentIds;
        uint256[] weightsBp;
        uint8 method;
        uint256 densityBp;
        uint256 seed;
    }

    /// The merge an adapter was registered as (parentIds empty: not a merge).
    struct Merge {
        uint256[] parentIds;
        uint256[] weightsBp;
        uint8 method;
        uint256 densityBp;
        uint256 seed;
        bytes32 recipeHash;
    }

    event BaseModelRegistered(uint256 indexed modelId, address indexed author, bytes32 weightsHash, bytes32 configHash, bytes32 tokenizerHash);
    event AdapterRegistered(uint256 indexed adapterId, uint256 indexed parentId, address indexed author, address validator, bytes32 weightsHash, bytes32 contributionRoot, bytes32 attributionIndexHash, bytes32 manifestHash);
    event AdapterRetired(uint256 indexed adapterId, address indexed author);
    /// A validator registered the adapter a builder asked it to train (after AdapterRegistered,
    /// whose author is the builder); fee went from the builder's deposit to the validator.
    /// An adapter registered as a merge of parentIds with the recipe whose hash is recipeHash.
    event AdapterMerged(uint256 indexed adapterId, address indexed validator, bytes32 indexed recipeHash, uint256[] parentIds, uint256[] weightsBp, uint8 method, uint256 densityBp, uint256 seed);
    event AdapterTrained(uint256 indexed adapterId, address indexed builder, address indexed validator, bytes32 requestHash, uint256 fee);

    function registerBaseModel(bytes32 weightsHash, bytes32 configHash, bytes32 tokenizerHash, string calldata license) external returns (uint256 modelId);
    function registerAdapter(AdapterSpec calldata spec) external returns (uint256 adapterId);
    /// The validator that trained the adapter (msg.sender, the request's and the spec's
    /// validator) registers it for the builder who signed the request, and charges fee
    /// (<= request.maxFee) from the builder's Inference deposit, claimable by the validator.
    function registerTrainedAdapter(AdapterSpec calldata spec, TrainingRequest calldata request, bytes calldata builderSignature, uint256 fee) external returns (uint256 adapterId);
    /// A staked validator registers the merge it built (its sidecar's canonical artifacts, which
    /// any validator rebuilds from the parents' artifacts and the recipe): the validator is its
    /// author and trainer. Logs AdapterRegistered (parentId: parentIds[0]) then AdapterMerged.
    function registerMergedAdapter(MergeRecipe calldata recipe, bytes32 weightsHash, bytes32 attributionIndexHash, bytes32 manifestHash, string calldata license) external returns (uint256 adapterId);
    function retireAdapter(uint256 adapterId) external;

    function getModel(uint256 modelId) external view returns (Model memory);
    /// @return path model ids from modelId back to its base model (modelId first)
    function getLineage(uint256 modelId) external view returns (uint256[] memory path);
    function inLineage(uint256 adapterId, uint256 contributionId) external view returns (bool);
    function modelCount() external view returns (uint256);
    /// EIP-712 digest of a training request on this chain (what the builder signs).
    function trainingRequestDigest(TrainingRequest calldata request) external view returns (bytes32);
    function trainingNonceUsed(address builder, uint256 nonce) external view returns (bool);
    /// The adapter registered for a training request (0: none yet).
    function adapterOfTrainingRequest(bytes32 requestHash) external view returns (uint256);
    /// The training request an adapter was registered for (zero: registered by its author).
    function trainingRequestOf(uint256 adapterId) external view returns (bytes32);
    /// The merge recipe of a merged adapter (empty parentIds: the model is no merge).
    function getMerge(uint256 adapterId) external view returns (Merge memory);
    /// keccak-256 of abi.encode(recipe): the recipe hash a merge with this recipe records.
    function mergeRecipeHash(MergeRecipe calldata recipe) external view returns (bytes32);
    /// @return count contributions trained on along the model's lineage whose consent was withdrawn
    function withdrawnInLineage(uint256 modelId) external view returns (uint256 count);
}
