// The basic flow an ethers v6 user runs against a dev node; prints one JSON object of facts.
// Usage: node ethers_flow.js http://127.0.0.1:8545
// Steps: chain id, balance, a signed transfer, deploy Demo from the unlocked account, call,
// read a log (receipt and queryFilter), decode a reason string and a custom error on revert,
// and one newHeads/logs event over a WebSocketProvider.
"use strict";
const fs = require("fs");
const path = require("path");
const { ethers } = require(path.resolve(__dirname, "../../../../node_modules/ethers"));

const MNEMONIC = "test test test test test test test test test test test junk";

function revertFacts(e) {
  return {
    code: e.code ?? null,
    reason: e.reason ?? null,
    revertName: e.revert ? e.revert.name : null,
    revertArgs: e.revert ? e.revert.args.map((a) => a.toString()) : null,
    data: e.data ?? null,
  };
}

async function expectRevert(fn) {
  try {
    await fn();
  } catch (e) {
    return revertFacts(e);
  }
  throw new Error("expected a revert");
}

async function main() {
  const url = process.argv[2];
  const art = JSON.parse(fs.readFileSync(path.join(__dirname, "build", "Demo.json"), "utf8"));
  const provider = new ethers.JsonRpcProvider(url, undefined, { cacheTimeout: -1, pollingInterval: 100 });
  const out = {};
  out.chainId = (await provider.getNetwork()).chainId.toString();
  const unlocked = await provider.getSigner(0);
  const wallet = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0/1").connect(provider);
  out.signer0 = await unlocked.getAddress();
  out.wallet1 = wallet.address;
  out.balanceWallet1 = (await provider.getBalance(wallet.address)).toString();

  // a locally signed EIP-1559 transfer (eth_sendRawTransaction)
  const to = "0x00000000000000000000000000000000000000aa";
  const before = await provider.getBalance(to);
  const tx = await wallet.sendTransaction({ to, value: ethers.parseEther("0.25") });
  const rcpt = await tx.wait();
  out.transfer = {
    status: rcpt.status,
    type: tx.type,
    gasUsed: rcpt.gasUsed.toString(),
    received: ((await provider.getBalance(to)) - before).toString(),
    nonceAfter: await provider.getTransactionCount(wallet.address),
  };

  // deploy from the unlocked account (eth_sendTransaction)
  const factory = new ethers.ContractFactory(art.abi, art.bytecode, unlocked);
  const demo = await factory.deploy(1000);
  await demo.waitForDeployment();
  const addr = await demo.getAddress();
  out.deploy = {
    address: addr,
    codeMatches: (await provider.getCode(addr)) === art.deployedBytecode,
    limit: (await demo.limit()).toString(),
    owner: await demo.owner(),
  };

  // a state-changing call from the wallet and the log it emits
  const asWallet = demo.connect(wallet);
  const setRcpt = await (await asWallet.set(5, 55, "from ethers")).wait();
  const parsed = setRcpt.logs.map((l) => demo.interface.parseLog(l)).filter(Boolean);
  out.setReceipt = { status: setRcpt.status, logs: parsed.map((p) => ({ name: p.name, args: p.args.map((a) => a.toString()) })) };
  const queried = await demo.queryFilter(demo.filters.ValueSet(wallet.address), 0, "latest");
  out.queried = queried.map((ev) => ({ name: ev.eventName, args: ev.args.map((a) => a.toString()), blockNumber: ev.blockNumber }));
  out.get5 = (await demo.get(5)).toString();

  // payable call and its event
  const depRcpt = await (await demo.deposit({ value: 1234n })).wait();
  out.deposit = { status: depRcpt.status, contractBalance: (await provider.getBalance(addr)).toString() };

  // reverts: reason string and custom error, through eth_call and through estimateGas
  out.revertCallReason = await expectRevert(() => demo.set.staticCall(0, 1, "x"));
  out.revertCallCustom = await expectRevert(() => demo.set.staticCall(9, 5000, "x"));
  out.revertSendReason = await expectRevert(() => asWallet.set(0, 1, "x"));
  out.revertSendCustom = await expectRevert(() => asWallet.set(9, 5000, "x"));

  // a WebSocket subscription sees the next ValueSet event
  const ws = new ethers.WebSocketProvider(url.replace("http://", "ws://"));
  const wsDemo = new ethers.Contract(addr, art.abi, ws);
  const seen = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no ValueSet over websocket")), 15000);
    wsDemo.on("ValueSet", (setter, key, value, note) => {
      clearTimeout(timer);
      resolve({ setter, key: key.toString(), value: value.toString(), note });
    });
  });
  await new Promise((r) => setTimeout(r, 300)); // let the eth_subscribe round-trip land
  await (await asWallet.set(6, 66, "over ws")).wait();
  out.wsEvent = await seen;
  await ws.destroy();
  provider.destroy();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
