// How amounts, hashes and times read on the page.

import { formatEther, getAddress } from 'viem';

/** Wei as ether, exact (every digit viem's formatEther keeps), with the unit. */
export function ether(wei) {
  return `${formatEther(BigInt(wei))} ETH`;
}

/** Wei with thousands separators: the exact amount. */
export function weiText(wei) {
  return `${BigInt(wei).toLocaleString('en-US')} wei`;
}

/** A hash or address shortened for tables; the page keeps the whole one in the link's title. */
export function short(hex, head = 10, tail = 6) {
  if (!hex || hex.length <= head + tail + 1) return hex ?? '';
  return `${hex.slice(0, head)}…${hex.slice(-tail)}`;
}

/** The EIP-55 form of an address (the node answers some in lower case). */
export function checksum(address) {
  try {
    return getAddress(address);
  } catch {
    return address;
  }
}

/** Seconds since the epoch as a local date and time. */
export function when(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString('en-GB', { hour12: false });
}

/** Basis points as a percentage with two decimals. */
export function percentBp(bp) {
  return `${(Number(bp) / 100).toFixed(2)}%`;
}

/** Bytes that should be text: UTF-8, with replacement characters where they are not. */
export function utf8(hex) {
  const clean = hex.startsWith('0x') ? hex.slice(2) : hex;
  const bytes = new Uint8Array(clean.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(clean.substr(i * 2, 2), 16);
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}
