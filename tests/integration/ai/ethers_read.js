// Read blocks, transactions and receipts that contain the native AI transaction types with
// ethers v6, as a dapp would. Prints one JSON object of facts; any throw is reported, not hidden.
// Usage: node ethers_read.js URL BLOCK_NUMBER TX_HASH [TX_HASH...]
"use strict";
const path = require("path");
const { ethers } = require(path.resolve(__dirname, "../../../node_modules/ethers"));

async function attempt(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: `${e.code ?? ""} ${e.shortMessage ?? e.message}`.trim() };
  }
}

async function main() {
  const [url, blockArg, ...hashes] = process.argv.slice(2);
  const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, cacheTimeout: -1 });
  const out = { block: null, txs: {}, receipts: {} };
  const block = await attempt(async () => {
    const b = await provider.getBlock(Number(blockArg), true);
    return { number: b.number, hash: b.hash, txs: b.prefetchedTransactions.map((t) => ({ hash: t.hash, type: t.type, from: t.from, to: t.to })) };
  });
  out.block = block;
  for (const h of hashes) {
    out.txs[h] = await attempt(async () => {
      const t = await provider.getTransaction(h);
      return { hash: t.hash, type: t.type, from: t.from, to: t.to, nonce: t.nonce, blockNumber: t.blockNumber, gasLimit: t.gasLimit.toString() };
    });
    out.receipts[h] = await attempt(async () => {
      const r = await provider.getTransactionReceipt(h);
      return { status: r.status, type: r.type, gasUsed: r.gasUsed.toString(), logs: r.logs.map((l) => ({ address: l.address, topics: l.topics, data: l.data })) };
    });
  }
  console.log(JSON.stringify(out));
  provider.destroy();
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: `${e.code ?? ""} ${e.shortMessage ?? e.message}`.trim() }));
  process.exit(0);
});
