// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Demo: a small contract that exercises what Ethereum tools read from a node.
/// @notice Storage writes, indexed and non-indexed event arguments, a require with a
///         reason string, a custom error with arguments, a payable function, a view
///         function and a constructor argument.
contract Demo {
    /// @notice Raised when a value exceeds the limit fixed at deployment.
    error TooLarge(uint256 given, uint256 limit);

    event ValueSet(address indexed setter, uint256 indexed key, uint256 value, string note);
    event Deposited(address indexed from, uint256 amount, uint256 totalDeposits);

    address public owner;
    uint256 public limit;
    mapping(uint256 => uint256) public values;
    uint256 public total;
    uint256 public totalDeposits;

    constructor(uint256 limit_) {
        owner = msg.sender;
        limit = limit_;
    }

    function set(uint256 key, uint256 value, string calldata note) external {
        require(key != 0, "key must be nonzero");
        if (value > limit) revert TooLarge(value, limit);
        values[key] = value;
        total += value;
        emit ValueSet(msg.sender, key, value, note);
    }

    function deposit() external payable {
        require(msg.value > 0, "deposit needs value");
        totalDeposits += msg.value;
        emit Deposited(msg.sender, msg.value, totalDeposits);
    }

    function get(uint256 key) external view returns (uint256) {
        return values[key];
    }

    function secondsSince(uint256 then) external view returns (uint256) {
        return block.timestamp - then;
    }
}
