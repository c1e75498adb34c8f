// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "../ai_precompiles/sol/IDatanets.sol";
import "../ai_precompiles/sol/IModelRegistry.sol";
import "../ai_precompiles/sol/IInference.sol";
import "../ai_precompiles/sol/IRewards.sol";

/// @title AIClient: an ordinary contract that drives the AI precompiles through their
///        shipped Solidity interfaces. It owns a datanet, is one of its two curators, contributes,
///        registers a base model and an adapter, relays an inference receipt, and claims its
///        rewards; every call is a CALL from this contract, so msg.sender at the precompile is
///        this contract's address.
contract AIClient {
    IDatanets constant DATANETS = IDatanets(0x00000000000000000000000000000000000A1001);
    IModelRegistry constant REGISTRY = IModelRegistry(0x00000000000000000000000000000000000A1002);
    IInference constant INFERENCE = IInference(0x00000000000000000000000000000000000A1003);
    IRewards constant REWARDS = IRewards(0x00000000000000000000000000000000000a1004);

    address public immutable owner;

    event Called(string op, uint256 id);

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "AIClient: not the owner");
        _;
    }

    receive() external payable {}

    function createDatanet(string calldata name, address otherCurator, uint256 maxSize)
        external onlyOwner returns (uint256 id)
    {
        address[] memory curators = new address[](2);
        curators[0] = address(this);
        curators[1] = otherCurator;
        id = DATANETS.createDatanet(name, "contracts", "ipfs://aiclient", "MIT", curators, 2, maxSize);
        emit Called("createDatanet", id);
    }

    /// Commits to a contribution by this contract (the contribution comes in a later block).
    function commit(uint256 datanetId, bytes32 contentHash, uint256 size, bytes32 metadataHash, bytes32 salt)
        external onlyOwner
    {
        DATANETS.commitContribution(
            DATANETS.contributionCommitment(address(this), datanetId, contentHash, size, "MIT", metadataHash, salt));
    }

    /// Contributes and reads the record back through the view, checking what the chain stored.
    function contribute(uint256 datanetId, bytes32 contentHash, uint256 size, bytes32 metadataHash, bytes32 salt)
        external onlyOwner returns (uint256 id)
    {
        id = DATANETS.contribute(datanetId, contentHash, size, "MIT", metadataHash, salt);
        IDatanets.Contribution memory c = DATANETS.getContribution(id);
        require(c.contributor == address(this) && c.contentHash == contentHash, "AIClient: readback");
        emit Called("contribute", id);
    }

    /// Curates through the interface, as a Solidity author naturally would.
    function curate(uint256 contributionId, bool approve, uint16 reasonCode) external onlyOwner {
        DATANETS.curate(contributionId, approve, reasonCode);
        emit Called("curate", contributionId);
    }

    /// Curates through a low-level call, which skips Solidity's code-size check of the target
    /// (the precompile accounts hold no code), and bubbles the precompile's revert data up.
    function curateLowLevel(uint256 contributionId, bool approve, uint16 reasonCode) external onlyOwner {
        (bool ok, bytes memory ret) = address(DATANETS).call(
            abi.encodeCall(IDatanets.curate, (contributionId, approve, reasonCode))
        );
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        emit Called("curate", contributionId);
    }

    /// Contributes inside try/catch: the precompile's Error(string) reaches Solidity intact.
    function tryContribute(uint256 datanetId, bytes32 contentHash, uint256 size)
        external onlyOwner returns (bool ok, string memory reason)
    {
        try DATANETS.contribute(datanetId, contentHash, size, "MIT", bytes32(uint256(1)), bytes32(0)) returns (uint256) {
            return (true, "");
        } catch Error(string memory r) {
            return (false, r);
        }
    }

    function publish(uint256 datanetId) external onlyOwner returns (uint256 version, bytes32 root) {
        (version, root) = DATANETS.publishVersion(datanetId);
        emit Called("publishVersion", version);
    }

    function registerBase(bytes32 weightsHash) external onlyOwner returns (uint256 id) {
        id = REGISTRY.registerBaseModel(weightsHash, keccak256("cfg"), keccak256("tok"), "MIT");
        emit Called("registerBaseModel", id);
    }

    function registerAdapter(IModelRegistry.AdapterSpec calldata spec) external onlyOwner returns (uint256 id) {
        id = REGISTRY.registerAdapter(spec);
        emit Called("registerAdapter", id);
    }

    function relayReceipt(
        IInference.InferenceRequest calldata request,
        bytes calldata userSignature,
        bytes32 outputHash,
        bytes32 engineProfile,
        uint256[] calldata contributionIds,
        uint256[] calldata weightsBp,
        uint256 fee,
        address validator,
        bytes calldata validatorSignature
    ) external onlyOwner returns (uint256 id) {
        id = INFERENCE.submitReceipt(
            request, userSignature, outputHash, engineProfile, contributionIds, weightsBp, fee, validator,
            validatorSignature
        );
        emit Called("submitReceipt", id);
    }

    /// Settles receipts whose challenge window is over, so that their split becomes claimable.
    function settle(uint256[] calldata receiptIds) external onlyOwner returns (uint256 settled) {
        settled = INFERENCE.settle(receiptIds);
        emit Called("settle", settled);
    }

    function claim() external onlyOwner returns (uint256 amount) {
        amount = REWARDS.claim();
        emit Called("claim", amount);
    }
}
