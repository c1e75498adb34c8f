// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title PrecompileProbe: the attacks of issue 8 on the AI precompiles, made the way a
///        stranger's contract would make them. Every function takes the precompile address and
///        the calldata, so one contract covers every module; a failed inner call bubbles its
///        revert data up, so the test sees the precompile's own reason.
contract PrecompileProbe {
    receive() external payable {}

    function _bubble(bool ok, bytes memory ret) private pure {
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// Minting through DELEGATECALL: the one msg.value is "paid" `times` times (for DELEGATECALL
    /// no wei moves; it stays here) and credited to this call's sender, who then withdraws it
    /// from the escrow that holds other users' deposits; `payout`, when not empty, is CALLed
    /// afterwards from here.
    function delegateMintThenCall(address target, bytes calldata credit, uint256 times, bytes calldata payout)
        external payable
    {
        for (uint256 i = 0; i < times; i++) {
            (bool ok, bytes memory ret) = target.delegatecall(credit);
            _bubble(ok, ret);
        }
        if (payout.length > 0) {
            (bool ok2, bytes memory ret2) = target.call(payout);
            _bubble(ok2, ret2);
        }
    }

    /// Minting through CALLCODE: each call "pays" `value`, which moves from this contract to
    /// itself, and is credited to this contract, which then CALLs `payout` (withdraw) to take the
    /// credited wei out of the escrow.
    function callcodeMintThenCall(address target, bytes calldata credit, uint256 times, uint256 value,
                                  bytes calldata payout) external payable
    {
        bytes memory data = credit;
        for (uint256 i = 0; i < times; i++) {
            bool ok;
            assembly {
                ok := callcode(gas(), target, value, add(data, 32), mload(data), 0, 0)
            }
            if (!ok) {
                assembly {
                    returndatacopy(0, 0, returndatasize())
                    revert(0, returndatasize())
                }
            }
        }
        (bool ok2, bytes memory ret2) = target.call(payout);
        _bubble(ok2, ret2);
    }

    /// Impersonation through DELEGATECALL: a harmless-looking function that a victim calls; the
    /// precompile frame it opens would see the victim as msg.sender.
    function claimAirdrop(address target, bytes calldata data) external {
        (bool ok, bytes memory ret) = target.delegatecall(data);
        _bubble(ok, ret);
    }

    /// STATICCALL: whether it succeeded and what came back (never reverts itself).
    function staticProbe(address target, bytes calldata data) external view returns (bool ok, bytes memory ret) {
        (ok, ret) = target.staticcall(data);
    }

    /// CALL with value, the legitimate way in: credited to this contract's own address.
    function callWith(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        _bubble(ok, ret);
        return ret;
    }
}

/// @title Staker: one more staker, staking what it was created with (a distinct address).
contract Staker {
    constructor(address staking) payable {
        (bool ok, bytes memory ret) = staking.call{value: msg.value}(abi.encodeWithSignature("stake()"));
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}

/// @title StakerSwarm: `n` new stakers of `each` wei in one transaction (issue 8's governance
///        lock needed thousands of them; this makes them cheaply).
contract StakerSwarm {
    function spawn(address staking, uint256 n, uint256 each) external payable {
        for (uint256 i = 0; i < n; i++) {
            new Staker{value: each}(staking);
        }
    }
}
