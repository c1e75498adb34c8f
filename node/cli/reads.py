"""Reads of chain records that several commands check before they send anything, each turning
"not found" into a sentence that says what to run instead."""

from __future__ import annotations

from node.cli.amounts import ether
from node.cli.client import Client, Json
from node.cli.errors import CLIError

#: A contribution's curation status, by its on-chain code.
STATUS = {0: "pending", 1: "accepted", 2: "rejected"}
#: Entries asked for per page of ``ai_listContributions``; a shorter page is the last.
CONTRIBUTION_PAGE = 1000
#: Entries asked for per page of the other ``ai_list*`` reads.
LIST_PAGE = 100


def get_datanet(client: Client, datanet_id: int) -> dict[str, Json]:
    try:
        return dict(client.call("ai_getDatanet", datanet_id))
    except CLIError as e:
        if "not found" in str(e):
            raise CLIError(f"datanet {datanet_id} does not exist (see `ailedger datanet list`)") from None
        raise


def get_model(client: Client, model_id: int, what: str = "model") -> dict[str, Json]:
    try:
        return dict(client.call("ai_getModel", model_id))
    except CLIError as e:
        if "not found" in str(e):
            raise CLIError(f"{what} {model_id} does not exist (see `ailedger model list`)") from None
        raise


def list_contributions(client: Client, datanet_id: int, status: str | None = None) -> list[dict[str, Json]]:
    """Every contribution of a datanet (of one status), page by page."""
    items: list[dict[str, Json]] = []
    while True:
        options: dict[str, Json] = {"offset": len(items), "limit": CONTRIBUTION_PAGE}
        if status:
            options["status"] = status
        page = client.call("ai_listContributions", datanet_id, options)
        items += page
        if len(page) < CONTRIBUTION_PAGE:
            return items


def list_all(client: Client, method: str, key: str) -> list[dict[str, Json]]:
    """Every entry of an ``ai_list*`` read that answers ``{key: [...], total}``."""
    items: list[dict[str, Json]] = []
    while True:
        page = client.call(method, {"offset": len(items), "limit": LIST_PAGE})
        items += page[key]
        if not page[key] or len(items) >= int(page["total"]):
            return items


def status_name(contribution: dict[str, Json]) -> str:
    return STATUS.get(int(contribution["status"]), str(contribution["status"]))


def deposit_of(client: Client, who: str) -> dict[str, int]:
    """An address's inference deposit: balance, withdrawal pending and its unlock time."""
    return {k: int(v, 16) for k, v in client.call("ai_getDeposit", who).items()}


def check_balance(client: Client, amount: int) -> None:
    """Refuse to send ``amount`` the signer does not hold."""
    balance = int(client.call("eth_getBalance", client.address, "latest"), 16)
    if balance < amount:
        raise CLIError(f"{client.address} holds {ether(balance)}, less than {ether(amount)}")


def training_set(client: Client, pairs: list[list[int]]) -> tuple[str, list[dict[str, Json]]]:
    """The exact contribution set of datanet versions ``[[id, version], ...]``, page by page:
    (its Merkle root, the contributions in leaf order)."""
    first = client.call("ai_getTrainingSet", pairs)
    listed = list(first["contributions"])
    while len(listed) < first.get("total", len(listed)):  # the node answers in pages
        page = client.call("ai_getTrainingSet", pairs, "latest", {"offset": len(listed)})["contributions"]
        if not page:
            break
        listed += page
    return str(first["contributionRoot"]), listed
