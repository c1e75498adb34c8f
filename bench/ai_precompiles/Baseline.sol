// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Baseline for bench/ai_precompiles: the same operations as the AI precompiles, written as an
/// ordinary contract with the same records, storage writes, events and checks. Like for like:
/// `submitReceipt` builds both EIP-712 digests on chain (the same domain, so the very signatures
/// the precompile takes verify here), refuses high-s, checks chain id, deadline, the validator's
/// stake, distinct attributions and walks the adapter's lineage; `stake` keeps the per-account and
/// total checkpoints and the candidate seat the precompile keeps. What it does not have: governed
/// parameters (the precompiles read each from storage) and the Merkle peaks (it roots a version by
/// hashing every leaf, as the precompiles did before). Not a product: no access control beyond
/// what the precompiles check.
contract Baseline {
    struct Datanet {
        uint256 id; address owner; string name; string domain; string descriptionUri;
        string licensePolicy; address[] curators; uint256 quorum; uint256 maxContributionSize;
        uint256 contributionCount; uint256 acceptedCount; uint256 versionCount; uint256 createdBlock;
    }
    struct Contribution {
        uint256 id; uint256 datanetId; address contributor; uint256 blockNumber; uint256 timestamp;
        bytes32 contentHash; uint256 size; string license; bytes32 metadataHash; uint8 status;
        uint256 approvals; uint256 rejections; uint16 reasonCode; uint256 acceptedIndex;
    }
    struct Version { bytes32 root; uint256 count; uint256 blockNumber; }
    struct Model {
        uint256 id; uint8 kind; uint256 parentId; uint256 baseModelId; uint256 depth; address author;
        address validator; bytes32 weightsHash; bytes32 configHash; bytes32 tokenizerHash;
        bytes32 hyperParamsHash; bytes32 attributionIndexHash; bytes32 manifestHash; bytes32 contributionRoot;
        string license; bool retired; uint256 createdBlock; uint256[] datanetIds;
        uint256[] datanetVersions; uint256[] children;
    }
    struct Receipt {
        address user; uint256 adapterId; bytes32 requestHash; bytes32 promptHash; bytes32 outputHash;
        uint256 maxTokens; bytes32 engineProfile; bytes32 weightsHash; bytes32 baseModelHash;
        uint256 fee; address validator; address submitter; uint256 blockNumber;
        uint256[] contributionIds; uint256[] weightsBp; uint256 releaseBlock; uint256 splitBp; address treasury;
    }

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, uint256 quorum);
    event ContributionSubmitted(uint256 indexed datanetId, uint256 indexed contributionId, address indexed contributor, bytes32 contentHash, uint256 size);
    event ContributionCurated(uint256 indexed contributionId, address indexed curator, bool approve, uint16 reasonCode);
    event ContributionAccepted(uint256 indexed datanetId, uint256 indexed contributionId, uint256 acceptedIndex);
    event VersionPublished(uint256 indexed datanetId, uint256 indexed version, bytes32 root, uint256 count);
    event ModelRegistered(uint256 indexed modelId, address indexed author, bytes32 weightsHash);
    event Deposited(address indexed account, uint256 amount, uint256 balance);
    event InferenceRecorded(uint256 indexed receiptId, uint256 indexed adapterId, address indexed user, address validator, bytes32 requestHash, bytes32 outputHash, uint256 fee);
    event RewardAccrued(address indexed account, uint256 indexed receiptId, uint8 indexed role, uint256 amount);
    event RewardClaimed(address indexed account, uint256 amount);
    event Staked(address indexed account, uint256 amount, uint256 stake, uint256 effectiveEpoch);

    uint256 public datanetCount;
    uint256 public contributionCount;
    uint256 public modelCount;
    uint256 public receiptCount;
    mapping(uint256 => Datanet) internal datanets;
    mapping(uint256 => Contribution) internal contributions;
    mapping(uint256 => mapping(address => bool)) internal isCurator;
    mapping(uint256 => mapping(address => uint8)) internal votes;
    mapping(uint256 => mapping(bytes32 => uint256)) internal byContent;
    mapping(uint256 => uint256[]) internal submitted;
    mapping(uint256 => uint256[]) internal accepted;
    mapping(uint256 => bytes32[]) internal leaves;
    mapping(uint256 => mapping(uint256 => Version)) internal versions;
    mapping(uint256 => Model) internal models;
    mapping(bytes32 => uint256) internal byWeights;
    mapping(address => uint256) public deposits;
    mapping(address => mapping(uint256 => bool)) public nonceUsed;
    mapping(uint256 => Receipt) internal receipts;
    mapping(address => uint256) public claimable;
    mapping(address => uint256) public earned;
    uint256 public totalClaimable;
    mapping(address => uint256) public stakes;
    mapping(address => uint256[]) internal ckptEpoch;
    mapping(address => uint256[]) internal ckptAmount;
    uint256 public totalStake;
    uint256[] internal totalEpoch;
    uint256[] internal totalAmount;
    address[] internal candidates;
    mapping(address => uint256) internal candIndex;

    bytes32 constant DOMAIN_TYPEHASH = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 constant REQUEST_TYPEHASH = keccak256("InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId,bool commercial)");
    bytes32 constant RECEIPT_TYPEHASH = keccak256("InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)");
    uint256 constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    function createDatanet(string calldata name, string calldata domain, string calldata uri, string calldata licensePolicy, address[] calldata curators, uint256 quorum, uint256 maxSize) external returns (uint256 id) {
        require(curators.length > 0 && quorum <= curators.length && maxSize > 0, "bad datanet");
        id = ++datanetCount;
        Datanet storage d = datanets[id];
        d.id = id; d.owner = msg.sender; d.name = name; d.domain = domain; d.descriptionUri = uri;
        d.licensePolicy = licensePolicy; d.curators = curators; d.quorum = quorum;
        d.maxContributionSize = maxSize; d.createdBlock = block.number;
        for (uint256 i = 0; i < curators.length; i++) isCurator[id][curators[i]] = true;
        emit DatanetCreated(id, msg.sender, name, quorum);
    }

    function contribute(uint256 datanetId, bytes32 contentHash, uint256 size, string calldata license, bytes32 metadataHash) external returns (uint256 id) {
        Datanet storage d = datanets[datanetId];
        require(d.id != 0, "no datanet");
        require(size > 0 && size <= d.maxContributionSize, "size");
        require(byContent[datanetId][contentHash] == 0, "dup");
        id = ++contributionCount;
        Contribution storage c = contributions[id];
        c.id = id; c.datanetId = datanetId; c.contributor = msg.sender; c.blockNumber = block.number;
        c.timestamp = block.timestamp; c.contentHash = contentHash; c.size = size; c.license = license;
        c.metadataHash = metadataHash;
        byContent[datanetId][contentHash] = id;
        submitted[datanetId].push(id);
        d.contributionCount++;
        emit ContributionSubmitted(datanetId, id, msg.sender, contentHash, size);
    }

    function curate(uint256 id, bool approve, uint16 reasonCode) external {
        Contribution storage c = contributions[id];
        require(isCurator[c.datanetId][msg.sender], "not a curator");
        require(c.status == 0 && votes[id][msg.sender] == 0, "decided");
        votes[id][msg.sender] = approve ? 1 : 2;
        emit ContributionCurated(id, msg.sender, approve, reasonCode);
        Datanet storage d = datanets[c.datanetId];
        if (approve) {
            c.approvals++;
            if (c.approvals >= d.quorum) {
                c.status = 1;
                c.acceptedIndex = accepted[c.datanetId].length;
                accepted[c.datanetId].push(id);
                leaves[c.datanetId].push(keccak256(abi.encodePacked(bytes1(0x00), abi.encode(c.datanetId, id, c.contributor, c.contentHash, c.size, c.metadataHash))));
                d.acceptedCount++;
                emit ContributionAccepted(c.datanetId, id, c.acceptedIndex);
            }
        } else {
            c.rejections++;
            if (c.rejections > d.curators.length - d.quorum) { c.status = 2; c.reasonCode = reasonCode; }
        }
    }

    function publishVersion(uint256 datanetId) external returns (uint256 v, bytes32 root) {
        Datanet storage d = datanets[datanetId];
        require(msg.sender == d.owner, "owner");
        bytes32[] memory level = leaves[datanetId];
        uint256 n = level.length;
        require(n > 0, "empty");
        while (n > 1) {
            uint256 m = 0;
            for (uint256 i = 0; i + 1 < n; i += 2) {
                (bytes32 a, bytes32 b) = level[i] <= level[i + 1] ? (level[i], level[i + 1]) : (level[i + 1], level[i]);
                level[m++] = keccak256(abi.encodePacked(bytes1(0x01), a, b));
            }
            if (n % 2 == 1) level[m++] = level[n - 1];
            n = m;
        }
        root = level[0];
        v = ++d.versionCount;
        versions[datanetId][v] = Version(root, leaves[datanetId].length, block.number);
        emit VersionPublished(datanetId, v, root, leaves[datanetId].length);
    }

    function registerBaseModel(bytes32 weightsHash, bytes32 configHash, bytes32 tokenizerHash, string calldata license) external returns (uint256 id) {
        require(byWeights[weightsHash] == 0, "dup weights");
        id = ++modelCount;
        byWeights[weightsHash] = id;
        Model storage m = models[id];
        m.id = id; m.kind = 1; m.baseModelId = id; m.author = msg.sender; m.weightsHash = weightsHash;
        m.configHash = configHash; m.tokenizerHash = tokenizerHash; m.license = license;
        m.createdBlock = block.number;
        emit ModelRegistered(id, msg.sender, weightsHash);
    }

    function registerAdapter(uint256 parentId, uint256[] calldata datanetIds, uint256[] calldata datanetVersions, bytes32 contributionRoot, bytes32 hyperParamsHash, bytes32 weightsHash, bytes32 attributionIndexHash, bytes32 manifestHash, address validator, string calldata license) external returns (uint256 id) {
        Model storage p = models[parentId];
        require(p.id != 0 && !p.retired, "parent");
        for (uint256 i = 0; i < datanetIds.length; i++) require(versions[datanetIds[i]][datanetVersions[i]].root != 0, "version");
        require(byWeights[weightsHash] == 0, "dup weights");
        id = ++modelCount;
        byWeights[weightsHash] = id;
        Model storage m = models[id];
        m.id = id; m.kind = 2; m.parentId = parentId; m.baseModelId = p.baseModelId; m.depth = p.depth + 1;
        m.author = msg.sender; m.validator = validator; m.weightsHash = weightsHash;
        m.hyperParamsHash = hyperParamsHash; m.attributionIndexHash = attributionIndexHash;
        m.manifestHash = manifestHash;
        m.contributionRoot = contributionRoot; m.license = license; m.createdBlock = block.number;
        m.datanetIds = datanetIds; m.datanetVersions = datanetVersions;
        p.children.push(id);
        emit ModelRegistered(id, msg.sender, weightsHash);
    }

    function deposit() external payable {
        deposits[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value, deposits[msg.sender]);
    }

    function _credit(address who, uint256 amount, uint256 rid, uint8 role) internal {
        if (amount == 0) return;
        claimable[who] += amount; earned[who] += amount;
        emit RewardAccrued(who, rid, role, amount);
    }

    struct Request {
        address user; uint256 adapterId; bytes32 promptHash; uint256 maxTokens; uint256 maxFee; uint256 nonce;
        uint256 deadline; uint256 chainId; bool commercial;
    }
    struct ReceiptIn {
        Request req; bytes userSig; bytes32 outputHash; bytes32 engineProfile; uint256[] ids; uint256[] weights;
        uint256 fee; address validator; bytes validatorSig;
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        bytes32 domain = keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("ailedger"), keccak256("1"),
                                              block.chainid, address(0xA1003)));
        return keccak256(abi.encodePacked(bytes2(0x1901), domain, structHash));
    }

    function _recover(bytes32 digest, bytes calldata sig) internal pure returns (address a) {
        require(sig.length == 65, "sig length");
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v < 27) v += 27;
        require((v == 27 || v == 28) && uint256(s) <= HALF_N, "malformed signature");
        a = ecrecover(digest, v, r, s);
        require(a != address(0), "does not recover");
    }

    /// The precompile's checks in its order: attribution arrays, chain id, deadline, both
    /// signatures over EIP-712 digests built here, validator stake, nonce, adapter, distinct
    /// attributions in the lineage, weights, max fee, deposit; then record and split.
    function submitReceipt(ReceiptIn calldata q) external returns (uint256 rid) {
        Request calldata rq = q.req;
        require(q.ids.length == q.weights.length && q.ids.length > 0 && q.ids.length <= 64, "attributions");
        require(rq.chainId == block.chainid, "chain");
        require(rq.deadline >= block.timestamp, "deadline");
        require(rq.maxTokens > 0 && rq.maxTokens <= 1024, "max tokens");
        require(q.engineProfile != 0, "engine profile");
        bytes32 rh = _digest(keccak256(abi.encode(REQUEST_TYPEHASH, rq.user, q.validator, rq.adapterId, rq.promptHash,
                                                  rq.maxTokens, rq.maxFee, rq.nonce, rq.deadline, rq.chainId,
                                                  rq.commercial)));
        require(_recover(rh, q.userSig) == rq.user, "user sig");
        bytes32 rd = _digest(keccak256(abi.encode(RECEIPT_TYPEHASH, rh, q.outputHash, q.engineProfile,
                                                  keccak256(abi.encodePacked(q.ids)),
                                                  keccak256(abi.encodePacked(q.weights)), q.fee, q.validator)));
        require(_recover(rd, q.validatorSig) == q.validator, "validator sig");
        require(stakes[q.validator] >= 1 ether, "validator stake");
        require(!nonceUsed[rq.user][rq.nonce], "nonce");
        Model storage m = models[rq.adapterId];
        require(m.id != 0 && m.kind == 2 && !m.retired, "adapter");
        _checkAttribution(rq.adapterId, q.ids, q.weights);
        require(q.fee <= rq.maxFee, "max fee");
        require(deposits[rq.user] >= q.fee, "deposit");
        nonceUsed[rq.user][rq.nonce] = true;
        deposits[rq.user] -= q.fee;
        rid = ++receiptCount;
        Receipt storage r = receipts[rid];
        r.user = rq.user; r.adapterId = rq.adapterId; r.requestHash = rh; r.promptHash = rq.promptHash;
        r.outputHash = q.outputHash; r.fee = q.fee; r.validator = q.validator; r.submitter = msg.sender;
        r.blockNumber = block.number; r.contributionIds = q.ids; r.weightsBp = q.weights;
        r.maxTokens = rq.maxTokens; r.engineProfile = q.engineProfile; r.weightsHash = m.weightsHash;
        r.baseModelHash = models[m.baseModelId].weightsHash; r.releaseBlock = block.number + 100;
        r.splitBp = 5000 | (1500 << 16) | (1000 << 32) | (2000 << 48); r.treasury = address(0xA10FF);
        emit InferenceRecorded(rid, rq.adapterId, rq.user, q.validator, rh, q.outputHash, q.fee);
        _split(q, rid);
    }

    function _inLineage(uint256 adapterId, Contribution storage c) internal view returns (bool) {
        for (uint256 pid = adapterId; pid != 0; pid = models[pid].parentId) {
            Model storage p = models[pid];
            for (uint256 k = 0; k < p.datanetIds.length; k++) {
                if (p.datanetIds[k] == c.datanetId && c.acceptedIndex < versions[c.datanetId][p.datanetVersions[k]].count) {
                    return true;
                }
            }
        }
        return false;
    }

    function _checkAttribution(uint256 adapterId, uint256[] calldata ids, uint256[] calldata weights) internal view {
        uint256 total;
        for (uint256 i = 0; i < ids.length; i++) {
            for (uint256 j = 0; j < i; j++) require(ids[j] != ids[i], "attributed twice");
            Contribution storage c = contributions[ids[i]];
            require(c.status == 1 && _inLineage(adapterId, c), "lineage");
            total += weights[i];
        }
        require(total == 10000, "weights");
    }

    function _split(ReceiptIn calldata q, uint256 rid) internal {
        Model storage m = models[q.req.adapterId];
        uint256 fee = q.fee;
        uint256 poolC = fee * 5000 / 10000;
        uint256 paid;
        for (uint256 i = 0; i < q.ids.length; i++) {
            uint256 a = poolC * q.weights[i] / 10000;
            _credit(contributions[q.ids[i]].contributor, a, rid, 0); paid += a;
        }
        uint256 author = fee * 1500 / 10000; _credit(m.author, author, rid, 1);
        uint256 lin = fee * 1000 / 10000 / m.depth;
        uint256 pid = m.parentId;
        while (pid != 0) { _credit(models[pid].author, lin, rid, 2); paid += lin; pid = models[pid].parentId; }
        uint256 val = fee * 2000 / 10000; _credit(q.validator, val, rid, 3);
        paid += author + val;
        _credit(address(0xA10FF), fee - paid, rid, 4);
        totalClaimable += fee;
    }

    function claim() external returns (uint256 amount) {
        amount = claimable[msg.sender];
        require(amount > 0, "nothing");
        claimable[msg.sender] = 0;
        totalClaimable -= amount;
        payable(msg.sender).transfer(amount);
        emit RewardClaimed(msg.sender, amount);
    }

    function _checkpoint(uint256[] storage ep, uint256[] storage amt, uint256 eff, uint256 value) internal {
        uint256 n = ep.length;
        if (n > 0 && ep[n - 1] == eff) amt[n - 1] = value;
        else { ep.push(eff); amt.push(value); }
    }

    function stake() external payable {
        require(msg.value > 0, "value");
        uint256 s = stakes[msg.sender] + msg.value;
        require(s >= 1e16, "min holding");
        stakes[msg.sender] = s;
        uint256 eff = block.number / 100 + 1;
        _checkpoint(ckptEpoch[msg.sender], ckptAmount[msg.sender], eff, s);
        totalStake += msg.value;
        _checkpoint(totalEpoch, totalAmount, eff, totalStake);
        if (s >= 1 ether && candIndex[msg.sender] == 0 && candidates.length < 100) {
            candidates.push(msg.sender);
            candIndex[msg.sender] = candidates.length;
        }
        emit Staked(msg.sender, msg.value, s, eff);
    }
}
