// A block: its header and its transactions, native AI types named.

import { call } from '../rpc.js';
import { TX_TYPES, num, precompileAt } from '../chain.js';
import { AddressLink, Amount, BlockLink, Fields, Hash, Link, Loaded, Section, TxLink, useLoad } from '../ui.jsx';
import { when } from '../format.js';

async function loadBlock(ref) {
  const byHash = /^0x[0-9a-fA-F]{64}$/.test(ref);
  if (!byHash && !/^\d+$/.test(ref)) throw new Error(`"${ref}" is neither a block number nor a block hash`);
  const [block, head] = await Promise.all([
    byHash ? call('eth_getBlockByHash', [ref, true]) : call('eth_getBlockByNumber', [`0x${BigInt(ref).toString(16)}`, true]),
    call('eth_blockNumber').then(num),
  ]);
  if (!block) throw new Error(`block ${ref} is not on this chain (head ${head})`);
  return { block, head };
}

export function BlockPage({ arg }) {
  const state = useLoad(() => loadBlock(arg), arg);
  return <Loaded state={state} what={`block ${arg}`}>{(data) => <BlockView {...data} />}</Loaded>;
}

function BlockView({ block, head }) {
  const n = num(block.number);
  return (
    <>
      <h1>Block {n.toLocaleString('en-US')}</h1>
      <nav class="pager">
        {n > 0 && <Link to={`block/${n - 1}`}>← block {n - 1}</Link>}
        {n < head && <Link to={`block/${n + 1}`}>block {n + 1} →</Link>}
      </nav>
      <Section>
        <Fields rows={[
          ['hash', <Hash value={block.hash} />],
          ['parent', n > 0 ? <Link to={`block/${block.parentHash}`} class="mono">{block.parentHash}</Link> : <Hash value={block.parentHash} />],
          ['time', `${when(num(block.timestamp))} (${num(block.timestamp)})`],
          ['proposer', <AddressLink address={block.miner} full />],
          ['transactions', block.transactions.length],
          ['gas used', `${num(block.gasUsed).toLocaleString('en-US')} of ${num(block.gasLimit).toLocaleString('en-US')}`],
          block.baseFeePerGas && ['base fee', <Amount wei={block.baseFeePerGas} exact />],
          ['state root', <Hash value={block.stateRoot} />],
          ['transactions root', <Hash value={block.transactionsRoot} />],
          ['receipts root', <Hash value={block.receiptsRoot} />],
          ['size', `${num(block.size).toLocaleString('en-US')} bytes`],
        ]} />
      </Section>
      <Section title={`Transactions (${block.transactions.length})`}>
        {block.transactions.length === 0 ? <p class="muted">No transaction in this block.</p> : (
          <table class="list" id="block-transactions">
            <thead><tr><th>#</th><th>hash</th><th>type</th><th>from</th><th>to</th><th>value</th></tr></thead>
            <tbody>
              {block.transactions.map((tx) => (
                <tr key={tx.hash} data-tx={tx.hash}>
                  <td>{num(tx.transactionIndex)}</td>
                  <td><TxLink hash={tx.hash} /></td>
                  <td><span class={`txtype t${num(tx.type)}`}>{TX_TYPES[num(tx.type)] ?? tx.type}</span></td>
                  <td><AddressLink address={tx.from} /></td>
                  <td>{tx.to ? <AddressLink address={tx.to} /> : <span class="muted">contract creation</span>}
                    {precompileAt(tx.to) && tx.input?.length >= 10 ? <span class="muted"> · {tx.input.slice(0, 10)}</span> : null}</td>
                  <td><Amount wei={tx.value} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}
