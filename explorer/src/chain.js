// What the explorer knows of the chain besides JSON-RPC: the AI precompiles' addresses and ABIs
// (the very JSON files the node ships, bundled at build time), to name them, decode their calls
// and events, and read their counters with eth_call.

import { decodeEventLog, decodeFunctionData, decodeFunctionResult, encodeFunctionData, toEventSelector, pad, numberToHex } from 'viem';
import Datanets from '../../ai_precompiles/abi/Datanets.json';
import ModelRegistry from '../../ai_precompiles/abi/ModelRegistry.json';
import Inference from '../../ai_precompiles/abi/Inference.json';
import Rewards from '../../ai_precompiles/abi/Rewards.json';
import Staking from '../../ai_precompiles/abi/Staking.json';
import Governance from '../../ai_precompiles/abi/Governance.json';
import { call, batch } from './rpc.js';

/** The precompiles' fixed addresses (ai_precompiles/addresses.py: 0x…0a10NN). */
export const PRECOMPILES = {
  Datanets: { address: '0x00000000000000000000000000000000000a1001', abi: Datanets },
  ModelRegistry: { address: '0x00000000000000000000000000000000000a1002', abi: ModelRegistry },
  Inference: { address: '0x00000000000000000000000000000000000a1003', abi: Inference },
  Rewards: { address: '0x00000000000000000000000000000000000a1004', abi: Rewards },
  Staking: { address: '0x00000000000000000000000000000000000a1005', abi: Staking },
  Governance: { address: '0x00000000000000000000000000000000000a1006', abi: Governance },
};
export const TREASURY = '0x00000000000000000000000000000000000a10ff';

const BY_ADDRESS = new Map(Object.entries(PRECOMPILES).map(([name, p]) => [p.address, { name, ...p }]));

/** The precompile at `address` ({name, address, abi}) or undefined. */
export function precompileAt(address) {
  return address ? BY_ADDRESS.get(address.toLowerCase()) : undefined;
}

/** A known address's name: a precompile or the treasury. */
export function addressName(address) {
  if (!address) return undefined;
  const lower = address.toLowerCase();
  if (lower === TREASURY) return 'Treasury';
  return BY_ADDRESS.get(lower)?.name;
}

/** Transaction types by their EIP-2718 byte; 0x60-0x63 are the chain's native AI types. */
export const TX_TYPES = {
  0: 'legacy',
  1: 'access list',
  2: 'EIP-1559',
  4: 'set code',
  0x60: 'data contribution',
  0x61: 'adapter registration',
  0x62: 'inference receipt',
  0x63: 'merge registration',
};

/** The field a native transaction's payload appears under in eth_getTransactionByHash. */
export const NATIVE_PAYLOAD = { 0x60: 'contribution', 0x61: 'adapter', 0x62: 'inference', 0x63: 'merge' };

/** The topic0 of `event` of precompile `name`. */
export function topic(name, event) {
  const item = PRECOMPILES[name].abi.find((x) => x.type === 'event' && x.name === event);
  return toEventSelector(item);
}

/** A uint as a 32-byte topic. */
export function uintTopic(n) {
  return pad(numberToHex(BigInt(n)), { size: 32 });
}

/** An address as a 32-byte topic. */
export function addressTopic(address) {
  return pad(address.toLowerCase(), { size: 32 });
}

/** A log decoded by its precompile's ABI: {name, args} or null (not ours, or not decodable). */
export function decodeLog(log) {
  const p = precompileAt(log.address);
  if (!p) return null;
  try {
    const { eventName, args } = decodeEventLog({ abi: p.abi, data: log.data, topics: log.topics });
    return { contract: p.name, name: eventName, args };
  } catch {
    return null;
  }
}

/** A call to a precompile decoded: {contract, name, args} or null. */
export function decodeCall(to, input) {
  const p = precompileAt(to);
  if (!p || !input || input === '0x') return null;
  try {
    const { functionName, args } = decodeFunctionData({ abi: p.abi, data: input });
    const item = p.abi.find((x) => x.type === 'function' && x.name === functionName);
    return { contract: p.name, name: functionName, args, inputs: item?.inputs ?? [] };
  } catch {
    return null;
  }
}

/** Read view functions of the precompiles in one batch: `[[name, fn, args], ...]` -> results. */
export async function readViews(reads) {
  const calls = reads.map(([name, fn, args]) => {
    const data = encodeFunctionData({ abi: PRECOMPILES[name].abi, functionName: fn, args: args ?? [] });
    return ['eth_call', [{ to: PRECOMPILES[name].address, data }, 'latest']];
  });
  const replies = await batch(calls);
  return replies.map((r, i) => {
    if (r.error) return { error: r.error };
    const [name, fn] = reads[i];
    return { result: decodeFunctionResult({ abi: PRECOMPILES[name].abi, functionName: fn, data: r.result }) };
  });
}

/** One view function's result (throws its error). */
export async function readView(name, fn, args) {
  const [r] = await readViews([[name, fn, args]]);
  if (r.error) throw r.error;
  return r.result;
}

/** A hex quantity (or number, or BigInt) as a BigInt. */
export function big(value) {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(value);
  return BigInt(value);
}

/** A hex quantity (or number) as a Number; for counts and block numbers. */
export function num(value) {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  return Number(BigInt(value));
}

/** The chain head's number. */
export async function headNumber() {
  return num(await call('eth_blockNumber'));
}

/** Most blocks the node scans for one eth_getLogs (node/rpc/filters.py MAX_LOG_RANGE). */
export const MAX_LOG_RANGE = 10000;

/** eth_getLogs over [from, to] (clipped to the node's range limit, newest blocks kept). */
export async function logs(filter, from, to) {
  const start = Math.max(from, to - MAX_LOG_RANGE + 1, 0);
  if (to < start) return [];
  return call('eth_getLogs', [{ ...filter, fromBlock: numberToHex(start), toBlock: numberToHex(to) }]);
}
