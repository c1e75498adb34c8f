"""Datanets precompile: create, contribute, curate to quorum, publish versions; its storage.

Storage (account ``DATANETS``), beside the :class:`Datanet`, :class:`Contribution` and
:class:`Version` records:

- ``slot("datanet.count")``, ``slot("contribution.count")``: last ids (ids start at 1)
- ``slot("datanet.curator", datanetId, curator)``: 1 for a curator (O(1) membership)
- ``slot("datanet.vote", contributionId, curator)``: 1 approved, 2 rejected
- ``slot("datanet.content", datanetId, contentHash)``: contribution id (no duplicate content)
- ``slot("datanet.commitment", commitment)``: block of a contribution's commitment, until its
  contribution spends it (see :func:`commit_contribution`)
- array ``slot("datanet.contributions", datanetId)``: every contribution id, in order
- array ``slot("datanet.leaves", datanetId)``: Merkle leaf of each accepted contribution, in
  acceptance order (so publishing reads one word per leaf)
- array ``slot("datanet.accepted", datanetId)``: accepted contribution ids, same order
- ``slot("datanet.peak", datanetId, level)``: Merkle peaks of the accepted leaves (see merkle.py),
  so accepting a contribution and publishing a version cost O(log n), not O(n)

Data quality (docs/ai_precompiles.md, "Near duplicates, bonds and penalties"), beside the
:class:`ContributionPolicy` and :class:`Quality` records:

- ``slot("datanet.sketch", contributionId) + i``: word ``i`` of a contribution's MinHash sketch
- ``slot("datanet.band", datanetId, bandKey)``: the first contribution of the datanet whose sketch
  has that LSH band key (one word per key: a lookup reads one word per band, never a list)
- ``slot("datanet.penalty", contributor)``: the contributor's penalty score (adversarial rejections)
- ``slot("datanet.terms.first", datanetId, bit)``: 1 + the accepted index of the first accepted
  contribution whose license carries restriction ``bit`` (0: none yet). Versions are prefixes of
  the accepted list, so version ``v`` carries the restriction iff that index is below its count:
  :func:`version_terms` is O(1) per version.
- ``slot("datanet.withdrawn.first", datanetId)``: 1 + the smallest accepted index whose
  contributor withdrew consent (0: none), so "is any of the first n withdrawn" is one read.
- ``slot("datanet.withdrawn.total", datanetId)``: accepted contributions withdrawn so far; a
  withdrawn contribution keeps its rank in ``withdrawn_seq``, a version the total at its
  publication in ``withdrawn_total``.
- ``slot("datanet.withdrawn.tree", datanetId, i)``: a Fenwick tree over accepted indices
  (``i`` in ``1..2**32``) counting withdrawals, so the number of withdrawn contributions among
  the first n is a prefix sum of at most 32 reads (:func:`withdrawn_in_prefix`), and a
  withdrawal writes at most 33 words, however many versions or adapters cover it.

Consent and versions: a version's training set is its first ``count`` accepted contributions
*minus those withdrawn when it was published* (``withdrawn_seq <= version.withdrawn_total``;
:func:`version_contribution_ids`), so a withdrawal never freezes a datanet: the owner publishes
a new version that leaves the contribution out. A version published before a withdrawal that
it covers is *tainted* (:func:`version_tainted`): nothing new trains on it.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak

from . import licenses, rewards
from .addresses import DATANETS, GOVERNANCE
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds, InvalidArgument, InvalidState, NotFound, Unauthorized
from .merkle import leaf_hash, merkle_proof, merkle_root, push_leaf, root_from_peaks, verify_proof
from .params import get_param
from .sketch import CANDIDATES, SKETCH_BYTES, band_keys, similarity_bp
from .storage import Array, Record, Store, rfield, slot

PENDING, ACCEPTED, REJECTED = 0, 1, 2
MAX_TEXT = 1024  # bytes of a name, domain, URI or license string
#: Reason code of a rejection as adversarial (spam, a lie about the sketch, poisoned data): it
#: slashes the contribution's bond and raises its contributor's penalty score. Other codes are
#: the datanet's own and return the bond.
REASON_ADVERSARIAL = 1
#: Quality.bond_status: no bond / held while pending / returned / slashed.
BOND_NONE, BOND_HELD, BOND_RETURNED, BOND_SLASHED = range(4)


@dataclass(frozen=True)
class Datanet(Record):
    """A domain data network."""

    NS = "datanet"
    id: int = rfield("uint", "datanet id (from 1)")
    owner: bytes = rfield("address", "creator; the only one who may publish versions")
    name: str = rfield("string", "human name")
    domain: str = rfield("string", "subject domain, e.g. 'medical-qa'")
    description_uri: str = rfield("string", "URI of a longer description")
    license_policy: str = rfield("string", "licenses contributions must be compatible with")
    curators: tuple[bytes, ...] = rfield("address[]", "addresses that approve or reject")
    quorum: int = rfield("uint", "approvals needed to accept a contribution")
    max_contribution_size: int = rfield("uint", "largest contribution, bytes")
    contribution_count: int = rfield("uint", "contributions submitted")
    accepted_count: int = rfield("uint", "contributions accepted")
    version_count: int = rfield("uint", "versions published")
    created_block: int = rfield("uint", "block of creation")


@dataclass(frozen=True)
class Contribution(Record):
    """One data contribution: its hash and metadata on chain, its bytes in the blob store."""

    NS = "contribution"
    id: int = rfield("uint", "contribution id (from 1, global across datanets)")
    datanet_id: int = rfield("uint", "datanet it was submitted to")
    contributor: bytes = rfield("address", "submitter, credited in rewards")
    block_number: int = rfield("uint", "block of submission")
    timestamp: int = rfield("uint", "block time of submission")
    content_hash: bytes = rfield("bytes32", "keccak256 of the blob")
    size: int = rfield("uint", "blob size in bytes")
    license: str = rfield("string", "license of this contribution")
    metadata_hash: bytes = rfield("bytes32", "keccak256 of its metadata JSON (in the blob store)")
    status: int = rfield("uint", "0 pending, 1 accepted, 2 rejected")
    approvals: int = rfield("uint", "curator approvals so far")
    rejections: int = rfield("uint", "curator rejections so far")
    reason_code: int = rfield("uint", "reason code of the deciding rejection")
    accepted_index: int = rfield("uint", "position among accepted contributions (when accepted)")
    terms: int = rfield("uint", "restriction bits of its license (licenses.py): 1 non-commercial, "
                        "2 no derivatives; 0 unrestricted")
    withdrawn_block: int = rfield("uint", "block in which its contributor withdrew consent (0: consent stands)")
    withdrawn_seq: int = rfield("uint", "when accepted and withdrawn: its rank among its datanet's withdrawals "
                                "(from 1); versions published with withdrawn_total >= it leave it out")

    def leaf(self) -> bytes:
        return leaf_hash(self.datanet_id, self.id, self.contributor, self.content_hash,
                         self.size, self.metadata_hash)


@dataclass(frozen=True)
class Version(Record):
    """A published version: the Merkle root over the first ``count`` accepted contributions."""

    NS = "version"
    datanet_id: int = rfield("uint", "datanet")
    version: int = rfield("uint", "version number (from 1)")
    root: bytes = rfield("bytes32", "Merkle root (see merkle.py)")
    count: int = rfield("uint", "accepted contributions covered")
    block_number: int = rfield("uint", "block of publication")
    withdrawn_total: int = rfield("uint", "accepted contributions of the datanet withdrawn when it was published")
    excluded: int = rfield("uint", "of its first count, those withdrawn when it was published: its training "
                           "set leaves them out")


@dataclass(frozen=True)
class ContributionPolicy(Record):
    """What a datanet asks of each contribution, set by its owner (applies to later contributions)."""

    NS = "datanet.policy"
    min_bond: int = rfield("uint", "wei each contribution must bond (0: a bond is optional)")
    require_sketch: bool = rfield("bool", "whether each contribution must carry its MinHash sketch")


@dataclass(frozen=True)
class Quality(Record):
    """What the chain knows of a contribution's quality: its near-duplicate group, its bond, and
    the curators' adversarial votes. All zero for a contribution made without a sketch or bond."""

    NS = "contribution.quality"
    sketched: bool = rfield("bool", "whether it carries a sketch (words at slot('datanet.sketch', id))")
    near_duplicate_of: int = rfield("uint", "the earlier contribution its sketch matched (0: none)")
    similarity_bp: int = rfield("uint", "estimated Jaccard similarity to that one, basis points")
    group_id: int = rfield("uint", "first contribution of its near-duplicate group (0: its own)")
    bond: int = rfield("uint", "wei bonded with it")
    bond_status: int = rfield("uint", "0 no bond, 1 held, 2 returned, 3 slashed")
    adversarial_votes: int = rfield("uint", "curator rejections with REASON_ADVERSARIAL")


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(DATANETS, topics, data)


def _text(value: str, what: str) -> str:
    if len(value.encode()) > MAX_TEXT:
        raise InvalidArgument(f"{what} longer than {MAX_TEXT} bytes")
    return value


def _datanet(store: Store, datanet_id: int) -> Datanet:
    if not 0 < datanet_id <= store.get(slot("datanet.count")):
        raise NotFound(f"datanet {datanet_id} does not exist")
    return Datanet.decode(store, datanet_id)


def _contribution_exists(store: Store, contribution_id: int) -> bool:
    return 0 < contribution_id <= store.get(slot("contribution.count"))


# -- operations (ABI and native paths) --

def create_datanet(ctx: Ctx, name: str, domain: str, description_uri: str, license_policy: str,
                   curators: list[bytes], quorum: int, max_contribution_size: int) -> int:
    """Create a datanet owned by the sender; returns its id.

    Rules: 1..``datanet.max_curators`` distinct non-zero curators; quorum within the governance
    bounds and at most the number of curators (else nothing could be accepted); a positive max
    size not above ``datanet.max_size_cap``.
    """
    gov = ctx.store(GOVERNANCE)
    store = ctx.store(DATANETS)
    if not name:
        raise InvalidArgument("datanet name is empty")
    for value, what in ((name, "name"), (domain, "domain"), (description_uri, "description URI"),
                        (license_policy, "license policy")):
        _text(value, what)
    if not curators:
        raise InvalidArgument("a datanet needs at least one curator")
    if len(curators) > get_param(gov, "datanet.max_curators"):
        raise InvalidArgument("too many curators")
    if len(set(curators)) != len(curators) or any(c == b"\x00" * 20 for c in curators):
        raise InvalidArgument("curators must be distinct non-zero addresses")
    lo, hi = get_param(gov, "datanet.min_quorum"), get_param(gov, "datanet.max_quorum")
    if not lo <= quorum <= hi:
        raise InvalidArgument(f"quorum must be within [{lo}, {hi}]")
    if quorum > len(curators):
        raise InvalidArgument("quorum exceeds the number of curators")
    if not 0 < max_contribution_size <= get_param(gov, "datanet.max_size_cap"):
        raise InvalidArgument("max contribution size out of range")
    datanet_id = store.incr(slot("datanet.count"))
    Datanet(id=datanet_id, owner=ctx.sender, name=name, domain=domain,
            description_uri=description_uri, license_policy=license_policy,
            curators=tuple(curators), quorum=quorum, max_contribution_size=max_contribution_size,
            created_block=ctx.block_number).encode(store, datanet_id)
    for c in curators:
        store.set(slot("datanet.curator", datanet_id, c), 1)
    _event(ctx, "DatanetCreated", datanet_id, ctx.sender, name, quorum)
    return datanet_id


def contribution_commitment(contributor: bytes, datanet_id: int, content_hash: bytes, size: int,
                            license: str, metadata_hash: bytes, salt: bytes) -> bytes:
    """The commitment a contributor makes before it contributes: ``keccak256(abi.encode(
    contributor, datanetId, contentHash, size, keccak256(bytes(license)), metadataHash, salt))``.

    It names the contributor and every field of the contribution, and hides them behind a random
    ``salt``: whoever sees the commitment learns nothing, and a contribution matches it only when
    sent by that contributor with exactly those fields."""
    return bytes(keccak(encode(
        ["address", "uint256", "bytes32", "uint256", "bytes32", "bytes32", "bytes32"],
        ["0x" + bytes(contributor).hex(), datanet_id, content_hash, size, keccak(license.encode()),
         metadata_hash, salt])))


def commit_contribution(ctx: Ctx, commitment: bytes) -> None:
    """Record a contribution's commitment (:func:`contribution_commitment`) in this block.

    Authorship goes to whoever contributes a content hash first, and a pending ``contribute`` shows
    its hash to everyone: a copier could send the same hash from its own account with a higher tip
    and own the honest contributor's bytes (issue 19, attack 7). So a contribution must spend a
    commitment made in an *earlier* block: the commitment shows nothing, and once the contribution
    shows the hash, a copier's own commitment is a block too late. Anyone may commit anything (a
    copied commitment still names its contributor); the first block a commitment was seen in is
    kept, so copying one cannot delay it.
    """
    if commitment == b"\x00" * 32:
        raise InvalidArgument("commitment is zero")
    store = ctx.store(DATANETS)
    key = slot("datanet.commitment", commitment)
    if store.get(key):
        return  # committed before (perhaps copied by someone else): the earliest block stands
    store.set(key, ctx.block_number)
    _event(ctx, "ContributionCommitted", commitment, ctx.block_number)


def contribute(ctx: Ctx, datanet_id: int, content_hash: bytes, size: int, license: str,
               metadata_hash: bytes, salt: bytes) -> int:
    """Record a contribution (pending curation) by the sender; returns its id.

    Rules: the datanet exists; ``0 < size <= max_contribution_size``; a non-zero content hash
    not already in this datanet; ``license`` is an allow-listed SPDX id (``licenses.py``, any
    case; stored in canonical case with its restriction bits); the sender committed to exactly this contribution with ``salt``
    in an earlier block (:func:`commit_contribution`), and the commitment is spent. That the
    bytes match the hash is the blob store's check (``ai_putBlob``); the chain only holds the
    hash.

    A datanet whose policy asks for a bond or a sketch takes contributions only through
    :func:`contribute_bonded`.
    """
    store = ctx.store(DATANETS)
    if 0 < datanet_id <= store.get(slot("datanet.count")):
        policy = ContributionPolicy.decode(store, datanet_id)
        if policy.min_bond or policy.require_sketch:
            raise InvalidState("this datanet asks each contribution for a bond or a sketch: "
                               "use contributeBonded")
    return _record_contribution(ctx, datanet_id, content_hash, size, license, metadata_hash, salt)


def _record_contribution(ctx: Ctx, datanet_id: int, content_hash: bytes, size: int, license: str,
                         metadata_hash: bytes, salt: bytes) -> int:
    """:func:`contribute`'s checks and records, without the datanet's policy."""
    store = ctx.store(DATANETS)
    max_size = Datanet.load_field(store, datanet_id, "max_contribution_size") if (
        0 < datanet_id <= store.get(slot("datanet.count"))) else None
    if max_size is None:
        raise NotFound(f"datanet {datanet_id} does not exist")
    if size == 0:
        raise InvalidArgument("contribution size is zero")
    if size > max_size:
        raise InvalidArgument(f"contribution size {size} exceeds the datanet's limit {max_size}")
    if content_hash == b"\x00" * 32:
        raise InvalidArgument("content hash is zero")
    spdx = licenses.canonical(license)  # an allow-listed SPDX id: its restrictions are known
    dup = slot("datanet.content", datanet_id, content_hash)
    if store.get(dup):
        raise InvalidState("content already contributed to this datanet")
    commitment = slot("datanet.commitment", contribution_commitment(
        ctx.sender, datanet_id, content_hash, size, license, metadata_hash, salt))
    committed = store.get(commitment)
    if not committed:
        raise InvalidState("no commitment to this contribution by the sender: call commitContribution "
                           "with its commitment, then contribute in a later block")
    if committed >= ctx.block_number:
        raise InvalidState("the contribution's commitment is from this block: contribute in a later block")
    store.set(commitment, 0)
    cid = store.incr(slot("contribution.count"))
    Contribution(id=cid, datanet_id=datanet_id, contributor=ctx.sender,
                 block_number=ctx.block_number, timestamp=ctx.timestamp,
                 content_hash=content_hash, size=size, license=spdx,
                 metadata_hash=metadata_hash, terms=licenses.TERMS[spdx]).encode(store, cid)
    store.set(dup, cid)
    Array(store, slot("datanet.contributions", datanet_id)).append(cid)
    store.incr(Datanet.field_slot(datanet_id, "contribution_count"))
    _event(ctx, "ContributionSubmitted", datanet_id, cid, ctx.sender, content_hash, size)
    return cid


def set_contribution_policy(ctx: Ctx, datanet_id: int, min_bond: int, require_sketch: bool) -> None:
    """The datanet's owner sets what each later contribution must carry: a bond of at least
    ``min_bond`` wei (at most ``datanet.max_min_bond``) and, when ``require_sketch``, its MinHash
    sketch. Contributions already made keep the terms they were made under."""
    store = ctx.store(DATANETS)
    d = _datanet(store, datanet_id)
    if ctx.sender != d.owner:
        raise Unauthorized("only the datanet owner sets its contribution policy")
    cap = get_param(ctx.store(GOVERNANCE), "datanet.max_min_bond")
    if min_bond > cap:
        raise InvalidArgument(f"min bond {min_bond} exceeds datanet.max_min_bond {cap}")
    ContributionPolicy(min_bond=min_bond, require_sketch=require_sketch).encode(store, datanet_id)
    _event(ctx, "ContributionPolicySet", datanet_id, min_bond, require_sketch)


def contribute_bonded(ctx: Ctx, datanet_id: int, content_hash: bytes, size: int, license: str,
                      metadata_hash: bytes, salt: bytes, sketch: bytes) -> int:
    """:func:`contribute`, with the call's value bonded and the blob's MinHash sketch
    (``sketch.compute_sketch``; empty for none) checked against the datanet's earlier ones.

    Rules, on top of :func:`contribute`'s: the value is at least the datanet's ``min_bond``
    (a flood of contributions costs a bond each); a sketch is exactly ``SKETCH_BYTES`` long, and
    present when the policy requires one. The sketch's LSH band keys are looked up in the
    datanet's band index (one word per band); the ``CANDIDATES`` contributions named by the most
    bands (the smaller id first on a tie) are compared minimum by minimum, and at the first whose
    estimated similarity is at least ``datanet.near_duplicate_bp`` the new contribution is
    flagged its near duplicate
    (``NearDuplicateFlagged``) and joins its group: if accepted it shares the group's attribution
    mass (``rewards.split_fee``) instead of adding its own. Bands not yet in the index point to
    the new contribution. Work: BANDS reads, at most BANDS writes, at most CANDIDATES sketch
    reads, whatever the datanet's size. That the sketch is the blob's is checked off chain by every node holding the
    blob (``ai_getContribution``'s ``sketchMatches``): a lie is for the curators to reject as
    adversarial, which slashes the bond.
    """
    store = ctx.store(DATANETS)
    if not 0 < datanet_id <= store.get(slot("datanet.count")):
        raise NotFound(f"datanet {datanet_id} does not exist")
    policy = ContributionPolicy.decode(store, datanet_id)
    if ctx.value < policy.min_bond:
        raise InsufficientFunds(f"bond {ctx.value} is below the datanet's minimum {policy.min_bond}")
    if sketch and len(sketch) != SKETCH_BYTES:
        raise InvalidArgument(f"a sketch is {SKETCH_BYTES} bytes, not {len(sketch)}")
    if not sketch and policy.require_sketch:
        raise InvalidArgument("this datanet requires each contribution's MinHash sketch")
    cid = _record_contribution(ctx, datanet_id, content_hash, size, license, metadata_hash, salt)
    original = similarity = 0
    group = cid
    if sketch:
        keys = band_keys(sketch)
        hits: dict[int, int] = {}
        for key in keys:
            bucket = slot("datanet.band", datanet_id, key)
            first = store.get(bucket)
            if first:
                hits[first] = hits.get(first, 0) + 1
            else:
                store.set(bucket, cid)
        threshold = get_param(ctx.store(GOVERNANCE), "datanet.near_duplicate_bp") if hits else 0
        for candidate in sorted(hits, key=lambda k: (-hits[k], k))[:CANDIDATES]:
            similarity = similarity_bp(sketch, _load_sketch(store, candidate))
            if similarity >= threshold:
                original = candidate
                group = Quality.load_field(store, candidate, "group_id") or candidate
                break
        for i in range(0, SKETCH_BYTES, 32):
            store.set(slot("datanet.sketch", cid) + i // 32, int.from_bytes(sketch[i:i + 32], "big"))
    Quality(sketched=bool(sketch), near_duplicate_of=original, similarity_bp=similarity if original else 0,
            group_id=group, bond=ctx.value, bond_status=BOND_HELD if ctx.value else BOND_NONE,
            adversarial_votes=0).encode(store, cid)
    if ctx.value:
        _event(ctx, "ContributionBonded", cid, ctx.sender, ctx.value)
    if original:
        _event(ctx, "NearDuplicateFlagged", datanet_id, cid, original, group, similarity)
    return cid


def _load_sketch(store: Store, contribution_id: int) -> bytes:
    base = slot("datanet.sketch", contribution_id)
    return b"".join(store.get(base + i).to_bytes(32, "big") for i in range(SKETCH_BYTES // 32))


def _get_sketch(ctx: Ctx, contribution_id: int) -> bytes:
    store = ctx.store(DATANETS)
    return _load_sketch(store, contribution_id) if Quality.load_field(store, contribution_id, "sketched") else b""


def group_ids(store: Store, contribution_ids: list[int]) -> list[int]:
    """Each contribution's near-duplicate group (its own id when it has none): one word each."""
    return [Quality.load_field(store, cid, "group_id") or cid for cid in contribution_ids]


def penalty_paused(ctx: Ctx, contributor: bytes) -> bool:
    """Whether ``contributor``'s rewards are paused: its penalty score has reached
    ``datanet.penalty_threshold``. Two words."""
    score = ctx.store(DATANETS).get(slot("datanet.penalty", contributor))
    return score >= get_param(ctx.store(GOVERNANCE), "datanet.penalty_threshold") if score else False


def _settle_bond(ctx: Ctx, store: Store, c: Contribution, adversarial: bool) -> None:
    """A decided contribution's bond: slashed to the treasury (as a claimable balance) when it was
    rejected as adversarial, else returned to its contributor; and an adversarial rejection
    raises the contributor's penalty score."""
    if Quality.load_field(store, c.id, "bond_status") == BOND_HELD:
        bond = Quality.load_field(store, c.id, "bond")
        if adversarial:
            Quality.store_field(store, c.id, "bond_status", BOND_SLASHED)
            treasury = get_param(ctx.store(GOVERNANCE), "treasury").to_bytes(20, "big")
            rewards.pay(ctx, DATANETS, treasury, bond, rewards.TREASURY)
            _event(ctx, "BondSlashed", c.id, c.contributor, bond)
        else:
            Quality.store_field(store, c.id, "bond_status", BOND_RETURNED)
            ctx.transfer(DATANETS, c.contributor, bond)
            _event(ctx, "BondReturned", c.id, c.contributor, bond)
    if adversarial:
        score = store.incr(slot("datanet.penalty", c.contributor))
        _event(ctx, "ContributorPenalized", c.contributor, c.id, score)


def curate(ctx: Ctx, contribution_id: int, approve: bool, reason_code: int) -> None:
    """One curator's decision on a pending contribution.

    Accepted when approvals reach the quorum; rejected as soon as the quorum can no longer be
    reached (rejections > curators - quorum), carrying the deciding reason code. Each curator
    decides once.

    A rejection with :data:`REASON_ADVERSARIAL` counts as an adversarial vote. The contribution
    is rejected *as adversarial* when the adversarial votes alone make the quorum unreachable
    (adversarial votes > curators - quorum): its bond is slashed and its contributor's penalty
    score rises. Any other decision returns the bond (:func:`_settle_bond`).
    """
    store = ctx.store(DATANETS)
    if not _contribution_exists(store, contribution_id):
        raise NotFound(f"contribution {contribution_id} does not exist")
    c = Contribution.decode(store, contribution_id)
    if not store.get(slot("datanet.curator", c.datanet_id, ctx.sender)):
        raise Unauthorized("sender is not a curator of this datanet")
    if c.status != PENDING:
        raise InvalidState("contribution is already decided")
    if c.withdrawn_block:
        raise InvalidState("the contributor withdrew consent: the contribution cannot be accepted")
    vote_slot = slot("datanet.vote", contribution_id, ctx.sender)
    if store.get(vote_slot):
        raise InvalidState("curator already voted on this contribution")
    if approve and reason_code:
        raise InvalidArgument("an approval carries no reason code")
    store.set(vote_slot, 1 if approve else 2)
    _event(ctx, "ContributionCurated", contribution_id, ctx.sender, approve, reason_code)
    quorum = Datanet.load_field(store, c.datanet_id, "quorum")
    n_curators = len(Datanet.list_field(store, c.datanet_id, "curators"))
    if approve:
        approvals = c.approvals + 1
        Contribution.store_field(store, contribution_id, "approvals", approvals)
        if approvals >= quorum:
            index = Array(store, slot("datanet.accepted", c.datanet_id)).append(contribution_id)
            leaf = c.leaf()
            Array(store, slot("datanet.leaves", c.datanet_id)).append(int.from_bytes(leaf, "big"))
            _push_peak(store, c.datanet_id, index, leaf)
            Contribution.store_field(store, contribution_id, "status", ACCEPTED)
            Contribution.store_field(store, contribution_id, "accepted_index", index)
            store.incr(Datanet.field_slot(c.datanet_id, "accepted_count"))
            for bit in (licenses.NON_COMMERCIAL, licenses.NO_DERIVATIVES):
                first = slot("datanet.terms.first", c.datanet_id, bit)
                if c.terms & bit and not store.get(first):
                    store.set(first, index + 1)
            _event(ctx, "ContributionAccepted", c.datanet_id, contribution_id, index)
            _settle_bond(ctx, store, c, adversarial=False)
    else:
        rejections = c.rejections + 1
        Contribution.store_field(store, contribution_id, "rejections", rejections)
        adversarial_votes = 0
        if reason_code == REASON_ADVERSARIAL:
            adversarial_votes = store.incr(Quality.field_slot(contribution_id, "adversarial_votes"))
        if rejections > n_curators - quorum:
            Contribution.store_field(store, contribution_id, "status", REJECTED)
            Contribution.store_field(store, contribution_id, "reason_code", reason_code)
            _event(ctx, "ContributionRejected", c.datanet_id, contribution_id, reason_code)
            if reason_code != REASON_ADVERSARIAL:
                adversarial_votes = Quality.load_field(store, contribution_id, "adversarial_votes")
            _settle_bond(ctx, store, c, adversarial=adversarial_votes > n_curators - quorum)


def _push_peak(store: Store, datanet_id: int, index: int, leaf: bytes) -> None:
    """Fold leaf number ``index`` into the datanet's Merkle peaks (O(log n) words)."""
    trailing_ones = ((index + 1) ^ index).bit_length() - 1  # the peaks this leaf merges with
    peaks = {lv: store.get_bytes32(slot("datanet.peak", datanet_id, lv)) for lv in range(trailing_ones)}
    for lv, node in push_leaf(peaks, index, leaf).items():
        store.set_bytes32(slot("datanet.peak", datanet_id, lv), node)


def _root(store: Store, datanet_id: int, count: int) -> bytes:
    """Merkle root of the first ``count`` accepted leaves, from the peaks (O(log n) words)."""
    peaks = {lv: store.get_bytes32(slot("datanet.peak", datanet_id, lv))
             for lv in range(count.bit_length()) if count >> lv & 1}
    return root_from_peaks(peaks, count)


def publish_version(ctx: Ctx, datanet_id: int) -> tuple[int, bytes]:
    """Publish the next version: the Merkle root over all contributions accepted so far.

    Only the owner publishes, and only when something was accepted, or a contribution withdrawn,
    since the last version. The version records how many of its contributions were withdrawn
    then (its training set leaves them out) and the datanet's withdrawal total (at most 33 reads).
    """
    store = ctx.store(DATANETS)
    d = _datanet(store, datanet_id)
    if ctx.sender != d.owner:
        raise Unauthorized("only the datanet owner publishes versions")
    last_key = (datanet_id, d.version_count)
    last = Version.load_field(store, last_key, "count") if d.version_count else 0
    withdrawn_total = store.get(slot("datanet.withdrawn.total", datanet_id))
    if d.accepted_count <= last and (
            not d.version_count or withdrawn_total == Version.load_field(store, last_key, "withdrawn_total")):
        raise InvalidState("no contributions accepted or withdrawn since the last version")
    root = _root(store, datanet_id, d.accepted_count)
    version = d.version_count + 1
    Version(datanet_id=datanet_id, version=version, root=root, count=d.accepted_count,
            block_number=ctx.block_number, withdrawn_total=withdrawn_total,
            excluded=withdrawn_in_prefix(store, datanet_id, d.accepted_count)).encode(store, (datanet_id, version))
    Datanet.store_field(store, datanet_id, "version_count", version)
    _event(ctx, "VersionPublished", datanet_id, version, root, d.accepted_count)
    return version, root


#: Accepted indices the withdrawal tree covers (a datanet never accepts this many).
WITHDRAWN_TREE_SIZE = 1 << 32


def withdraw_consent(ctx: Ctx, contribution_id: int) -> None:
    """The contributor withdraws consent for its contribution; final.

    From now on: a pending contribution cannot be accepted; a published version whose training
    set holds an accepted one cannot be trained on (``ModelRegistry`` refuses the registration,
    the node's ``ai_train`` refuses the job), and versions published from now on leave it out
    (the owner may publish one for the withdrawal alone); adapters already trained on it count
    it in their ``withdrawnContributions`` and receipts recorded for them carry
    ``consentWithdrawn``. Nothing loops over versions or adapters: the withdrawal updates the
    datanet's smallest withdrawn index, its withdrawal total and a Fenwick tree over accepted
    indices (at most 35 words), which versions and adapters read when asked.
    """
    store = ctx.store(DATANETS)
    if not _contribution_exists(store, contribution_id):
        raise NotFound(f"contribution {contribution_id} does not exist")
    if Contribution.load_field(store, contribution_id, "contributor") != ctx.sender:
        raise Unauthorized("only the contributor withdraws consent for its contribution")
    if Contribution.load_field(store, contribution_id, "withdrawn_block"):
        raise InvalidState("consent already withdrawn")
    Contribution.store_field(store, contribution_id, "withdrawn_block", ctx.block_number)
    datanet_id = Contribution.load_field(store, contribution_id, "datanet_id")
    accepted = Contribution.load_field(store, contribution_id, "status") == ACCEPTED
    index = Contribution.load_field(store, contribution_id, "accepted_index") if accepted else 0
    if accepted:
        seq = mark_withdrawn(store, datanet_id, index)
        Contribution.store_field(store, contribution_id, "withdrawn_seq", seq)
    _event(ctx, "ConsentWithdrawn", datanet_id, contribution_id, ctx.sender, accepted, index)


def mark_withdrawn(store: Store, datanet_id: int, index: int) -> int:
    """Count the accepted contribution at ``index`` as withdrawn: lower the datanet's smallest
    withdrawn index if needed, add 1 along its Fenwick path (at most 33 words); returns its rank
    among the datanet's withdrawals."""
    if index >= WITHDRAWN_TREE_SIZE:
        raise InvalidState("accepted index beyond the withdrawal tree")
    first = slot("datanet.withdrawn.first", datanet_id)
    current = store.get(first)
    if not current or index + 1 < current:
        store.set(first, index + 1)
    i = index + 1
    while i <= WITHDRAWN_TREE_SIZE:
        store.incr(slot("datanet.withdrawn.tree", datanet_id, i))
        i += i & -i
    return store.incr(slot("datanet.withdrawn.total", datanet_id))


def version_terms(store: Store, datanet_id: int, count: int) -> int:
    """Restriction bits of the first ``count`` accepted contributions: the OR of their licenses'
    (two reads, whatever ``count``)."""
    terms = 0
    for bit in (licenses.NON_COMMERCIAL, licenses.NO_DERIVATIVES):
        first = store.get(slot("datanet.terms.first", datanet_id, bit))
        if first and first - 1 < count:
            terms |= bit
    return terms


def version_withdrawn(store: Store, datanet_id: int, count: int) -> bool:
    """Whether a contributor withdrew consent for one of the first ``count`` accepted
    contributions (one read)."""
    first = store.get(slot("datanet.withdrawn.first", datanet_id))
    return bool(first) and first - 1 < count


def withdrawn_in_prefix(store: Store, datanet_id: int, count: int) -> int:
    """How many of the first ``count`` accepted contributions were withdrawn (a Fenwick prefix
    sum: at most 32 reads, one when none of them was)."""
    if not version_withdrawn(store, datanet_id, count):
        return 0
    total, i = 0, min(count, WITHDRAWN_TREE_SIZE)
    while i > 0:
        total += store.get(slot("datanet.withdrawn.tree", datanet_id, i))
        i -= i & -i
    return total


def withdrawn_since_published(store: Store, datanet_id: int, version: int) -> int:
    """Contributions of a version's training set withdrawn after it was published: what the
    adapters trained on it count. One read while the datanet had no withdrawal since; else a
    Fenwick prefix sum (at most 32 reads)."""
    if store.get(slot("datanet.withdrawn.total", datanet_id)) == Version.load_field(
            store, (datanet_id, version), "withdrawn_total"):
        return 0
    count = Version.load_field(store, (datanet_id, version), "count")
    return withdrawn_in_prefix(store, datanet_id, count) - Version.load_field(store, (datanet_id, version), "excluded")


def version_tainted(store: Store, datanet_id: int, version: int) -> bool:
    """Whether a contribution in the version's training set was withdrawn after it was
    published: nothing new may train on it (a newer version leaves the contribution out)."""
    return withdrawn_since_published(store, datanet_id, version) > 0


def excluded_from(store: Store, contribution_id: int, datanet_id: int, version: int) -> bool:
    """Whether a version leaves out a contribution of its prefix: withdrawn when it was
    published (two reads)."""
    seq = Contribution.load_field(store, contribution_id, "withdrawn_seq")
    return bool(seq) and seq <= Version.load_field(store, (datanet_id, version), "withdrawn_total")


def _version_count(store: Store, datanet_id: int, version: int) -> int:
    return version_record(store, datanet_id, version).count


# -- views --

def _get_datanet(ctx: Ctx, datanet_id: int) -> Datanet:
    return _datanet(ctx.store(DATANETS), datanet_id)


def _get_contribution(ctx: Ctx, contribution_id: int) -> Contribution:
    store = ctx.store(DATANETS)
    if not _contribution_exists(store, contribution_id):
        raise NotFound(f"contribution {contribution_id} does not exist")
    return Contribution.decode(store, contribution_id)


def version_record(store: Store, datanet_id: int, version: int) -> Version:
    d_versions = Datanet.load_field(store, datanet_id, "version_count") if (
        0 < datanet_id <= store.get(slot("datanet.count"))) else 0
    if not 0 < version <= d_versions:
        raise NotFound(f"datanet {datanet_id} has no version {version}")
    return Version.decode(store, (datanet_id, version))


def _accepted_at(ctx: Ctx, datanet_id: int, index: int) -> int:
    arr = Array(ctx.store(DATANETS), slot("datanet.accepted", datanet_id))
    if index >= len(arr):
        raise NotFound("no accepted contribution at that index")
    return arr.get(index)


def _withdrawn_in_version(store: Store, datanet_id: int, version: int) -> int:
    version_record(store, datanet_id, version)  # raises NotFound
    return withdrawn_since_published(store, datanet_id, version)


PRECOMPILE = Precompile("Datanets", DATANETS, {
    "createDatanet": create_datanet,
    "commitContribution": commit_contribution,
    "contribute": contribute,
    "curate": curate,
    "publishVersion": publish_version,
    "getDatanet": _get_datanet,
    "getContribution": _get_contribution,
    "getVersion": lambda ctx, d, v: version_record(ctx.store(DATANETS), d, v),
    "acceptedContributionAt": _accepted_at,
    "hasVoted": lambda ctx, cid, who: bool(ctx.store(DATANETS).get(slot("datanet.vote", cid, who))),
    "datanetCount": lambda ctx: ctx.store(DATANETS).get(slot("datanet.count")),
    "contributionCommitment": lambda ctx, *fields: contribution_commitment(*fields),
    "commitmentBlock": lambda ctx, c: ctx.store(DATANETS).get(slot("datanet.commitment", c)),
    "contributionCount": lambda ctx: ctx.store(DATANETS).get(slot("contribution.count")),
    "setContributionPolicy": set_contribution_policy,
    "contributeBonded": contribute_bonded,
    "getContributionPolicy": lambda ctx, d: ContributionPolicy.decode(ctx.store(DATANETS), _datanet(
        ctx.store(DATANETS), d).id),
    "getQuality": lambda ctx, cid: Quality.decode(ctx.store(DATANETS), _get_contribution(ctx, cid).id),
    "getSketch": lambda ctx, cid: _get_sketch(ctx, _get_contribution(ctx, cid).id),
    "penaltyScore": lambda ctx, who: ctx.store(DATANETS).get(slot("datanet.penalty", who)),
    "withdrawConsent": withdraw_consent,
    "versionTerms": lambda ctx, d, v: version_terms(ctx.store(DATANETS), d, _version_count(ctx.store(DATANETS), d, v)),
    "withdrawnInVersion": lambda ctx, d, v: _withdrawn_in_version(ctx.store(DATANETS), d, v),
})


# -- read helpers for the ai_ RPC (read-only StateAPI, no gas) --

def _reader(state: Any) -> Store:
    return Store(state, DATANETS)


def get_datanet_count(state: Any) -> int:
    """How many datanets exist: ids run 1..count."""
    return _reader(state).get(slot("datanet.count"))


def get_datanet(state: Any, datanet_id: int) -> Datanet | None:
    store = _reader(state)
    if not 0 < datanet_id <= store.get(slot("datanet.count")):
        return None
    return Datanet.decode(store, datanet_id)


def get_contribution(state: Any, contribution_id: int) -> Contribution | None:
    store = _reader(state)
    if not _contribution_exists(store, contribution_id):
        return None
    return Contribution.decode(store, contribution_id)


def list_contributions(
    state: Any, datanet_id: int, status: int | None = None, offset: int = 0,
    limit: int | None = None, max_scan: int | None = None,
) -> list[Contribution]:
    """Contributions of a datanet in submission order, optionally only one status, from
    the ``offset``-th match, at most ``limit``.

    Work is bounded by the page, not the datanet: without a status, or for ``accepted``
    (which has its own index), only the page's records are read. Other statuses are found
    by scanning; past ``max_scan`` records examined it raises :class:`InvalidArgument`.
    """
    store = _reader(state)
    if status is None or status == ACCEPTED:
        key = "datanet.contributions" if status is None else "datanet.accepted"
        ids = Array(store, slot(key, datanet_id))
        end = len(ids) if limit is None else min(len(ids), offset + limit)
        return [Contribution.decode(store, ids.get(i)) for i in range(offset, end)]
    out: list[Contribution] = []
    skipped = 0
    all_ids = Array(store, slot("datanet.contributions", datanet_id))
    for scanned, i in enumerate(range(len(all_ids))):
        if limit is not None and len(out) >= limit:
            break
        if max_scan is not None and scanned >= max_scan:
            raise InvalidArgument(
                f"listing by this status scans at most {max_scan} contributions; lower the offset"
            )
        c = Contribution.decode(store, all_ids.get(i))
        if c.status != status:
            continue
        if skipped < offset:
            skipped += 1
            continue
        out.append(c)
    return out


def get_quality(state: Any, contribution_id: int) -> dict[str, Any] | None:
    """A contribution's quality record with its sketch (hex, empty when none) and its
    contributor's penalty score (for ``ai_getContribution``); None if it does not exist."""
    store = _reader(state)
    if not _contribution_exists(store, contribution_id):
        return None
    q = Quality.decode(store, contribution_id)
    contributor = Contribution.load_field(store, contribution_id, "contributor")
    out = dict(q.to_json())
    out["groupId"] = q.group_id or contribution_id
    out["sketch"] = "0x" + (_load_sketch(store, contribution_id).hex() if q.sketched else "")
    out["penaltyScore"] = store.get(slot("datanet.penalty", contributor))
    return out


def get_contribution_policy(state: Any, datanet_id: int) -> ContributionPolicy | None:
    store = _reader(state)
    if not 0 < datanet_id <= store.get(slot("datanet.count")):
        return None
    return ContributionPolicy.decode(store, datanet_id)


def get_version(state: Any, datanet_id: int, version: int) -> Version | None:
    try:
        return version_record(_reader(state), datanet_id, version)
    except NotFound:
        return None


def get_withdrawn_in_version(state: Any, datanet_id: int, version: int) -> int:
    """How many contributions of a published version's training set were withdrawn after its
    publication (0 for a version that does not exist)."""
    store = _reader(state)
    try:
        version_record(store, datanet_id, version)
    except NotFound:
        return 0
    return withdrawn_since_published(store, datanet_id, version)


def version_contribution_ids(state: Any, datanet_id: int, version: int) -> list[int]:
    """Ids of a version's training set, in leaf order: its first ``count`` accepted
    contributions less those withdrawn when it was published."""
    store = _reader(state)
    v = version_record(store, datanet_id, version)
    arr = Array(store, slot("datanet.accepted", datanet_id))
    ids = [arr.get(i) for i in range(v.count)]
    if not v.excluded:
        return ids
    return [cid for cid in ids
            if not 0 < Contribution.load_field(store, cid, "withdrawn_seq") <= v.withdrawn_total]


@dataclass(frozen=True)
class TrainingLeaf:
    """One contribution of a version's training set, as a lineage shows it."""

    contribution_id: int
    contributor: bytes
    leaf: bytes


#: Training sets read for lineages, keyed by (datanet, version, root, count) and kept only for a
#: version that excluded nothing: its training set is then all ``count`` leaves under ``root``,
#: so the key fixes the answer on any chain and any fork (a dev revert that republishes another
#: version under the same number has another root). At most ``_SET_CACHE_LEAVES`` leaves are
#: held, least recently read dropped first.
_SET_CACHE: collections.OrderedDict[tuple[int, int, bytes, int], tuple[TrainingLeaf, ...]] = (
    collections.OrderedDict())
_SET_CACHE_LEAVES = 200_000
_set_cache_lock = threading.Lock()


def version_training_set(state: Any, datanet_id: int, version: int) -> tuple[TrainingLeaf, ...]:
    """A published version's training set, in leaf order (what ``ai_getLineage`` lists).

    Reads three words a contribution (its accepted id, its stored leaf, its contributor), not
    the whole record, and keeps the answer for versions that excluded nothing (see
    ``_SET_CACHE``): a lineage read again, by the same or another adapter, reads one record.
    Raises :class:`NotFound` for a version that does not exist.
    """
    store = _reader(state)
    v = version_record(store, datanet_id, version)
    key = (datanet_id, version, v.root, v.count)
    if not v.excluded:
        with _set_cache_lock:
            hit = _SET_CACHE.get(key)
            if hit is not None:
                _SET_CACHE.move_to_end(key)
                return hit
    ids = Array(store, slot("datanet.accepted", datanet_id))
    leaves = Array(store, slot("datanet.leaves", datanet_id))
    out = []
    for i in range(v.count):
        cid = ids.get(i)
        if v.excluded and 0 < Contribution.load_field(store, cid, "withdrawn_seq") <= v.withdrawn_total:
            continue
        out.append(TrainingLeaf(cid, Contribution.load_field(store, cid, "contributor"),
                                leaves.get(i).to_bytes(32, "big")))
    result = tuple(out)
    # cached only when the leaves read are the ones the root commits to
    if not v.excluded and result and merkle_root([t.leaf for t in result]) == v.root:
        with _set_cache_lock:
            _SET_CACHE[key] = result
            held = sum(len(s) for s in _SET_CACHE.values())
            while held > _SET_CACHE_LEAVES and len(_SET_CACHE) > 1:
                held -= len(_SET_CACHE.popitem(last=False)[1])
            if held > _SET_CACHE_LEAVES:
                _SET_CACHE.clear()
    return result


def get_contribution_proof(state: Any, datanet_id: int, version: int,
                           contribution_id: int) -> dict[str, Any]:
    """Inclusion proof of a contribution in a published version (for ``ai_getContributionProof``).

    The answer carries the leaf's fields so a client recomputes the leaf itself
    (``merkle.leaf_hash``) and checks it with ``merkle.verify_proof`` against the root it reads
    from any node (or from an ``eth_call`` to ``getVersion``).
    """
    store = _reader(state)
    v = version_record(store, datanet_id, version)
    c = get_contribution(state, contribution_id)
    if c is None or c.datanet_id != datanet_id or c.status != ACCEPTED or c.accepted_index >= v.count:
        raise NotFound(f"contribution {contribution_id} is not in version {version} of datanet {datanet_id}")
    leaves_arr = Array(store, slot("datanet.leaves", datanet_id))
    leaves = [leaves_arr.get(i).to_bytes(32, "big") for i in range(v.count)]
    proof = merkle_proof(leaves, c.accepted_index)
    assert verify_proof(c.leaf(), proof, v.root)
    return {
        "datanetId": datanet_id, "version": version, "root": "0x" + v.root.hex(),
        "count": v.count, "index": c.accepted_index, "contributionId": contribution_id,
        "leaf": "0x" + c.leaf().hex(), "proof": ["0x" + p.hex() for p in proof],
        "contribution": c.to_json(),
    }
