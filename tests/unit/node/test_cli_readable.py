"""What a person or a script reads from the CLI (issue 21): failures under ``--json`` as one
JSON object on stdout, prose lines without it; help that says what the commands do now."""

from __future__ import annotations

import json

import pytest

from node.cli import build_parser, main
from node.cli.errors import CLIError, error_json
from tests.support.procs import free_port


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_failures_are_one_json_object_on_stdout(capsys):
    gone = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_cli(capsys, "receipt", "show", "1", "--rpc", gone, "--json")
    assert code == 1 and err == ""
    error = json.loads(out)["error"]
    assert error["code"] == "unreachable" and "cannot reach the node" in error["message"]
    code, out, err = run_cli(capsys, "datanet", "create", "x", "--rpc", gone, "--json")  # no key: refused first
    assert code == 1 and json.loads(out)["error"]["code"] == "failed" and "--account" in json.loads(out)["error"]["message"]
    code, out, err = run_cli(capsys, "receipt", "show", "--json")  # a usage error
    assert code == 2 and err == ""
    assert json.loads(out) == {"error": {"code": "usage", "message": "the following arguments are required: id"}}


def test_without_json_failures_stay_one_prose_line(capsys):
    code, out, err = run_cli(capsys, "receipt", "show", "1", "--rpc", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == "" and err.startswith("error: cannot reach the node") and err.count("\n") == 1
    code, out, err = run_cli(capsys, "receipt", "show")
    assert code == 2 and out == "" and err.startswith("usage: ailedger receipt show")
    assert "ailedger receipt show: error: the following arguments are required: id" in err


def test_a_node_error_keeps_its_json_rpc_code():
    e = CLIError("invalid argument 0", code="rpc", details={"rpcCode": -32602})
    assert error_json(str(e), e.code, **e.details) == {
        "error": {"code": "rpc", "message": "invalid argument 0", "rpcCode": -32602}}


def help_of(*argv: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return ""


def test_help_is_current(capsys):
    help_of("testnet")
    testnet = " ".join(capsys.readouterr().out.split())
    assert "one validator and followers" not in testnet
    assert "BFT" in testnet and "--validators N" in testnet
    help_of("receipt", "show")
    show = " ".join(capsys.readouterr().out.split())
    assert "dev chains only" not in show
    assert "any chain" in show and "public" in show  # --account: the dev keys work anywhere
    assert '{"error": {"code": ..., "message": ...}}' in show  # --json says how failures read
