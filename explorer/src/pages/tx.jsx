// A transaction: its fields, a native AI type's payload as the node decodes it, its call to a
// precompile and its logs decoded by the precompiles' ABIs, with links to what they name.

import { call } from '../rpc.js';
import { NATIVE_PAYLOAD, TX_TYPES, decodeCall, decodeLog, num } from '../chain.js';
import { AddressLink, Amount, BlockLink, Fields, Hash, Link, Loaded, Section, useLoad } from '../ui.jsx';
import { when } from '../format.js';

async function loadTx(hash) {
  if (!/^0x[0-9a-fA-F]{64}$/.test(hash)) throw new Error(`"${hash}" is not a transaction hash (0x and 64 hex digits)`);
  const [tx, receipt] = await Promise.all([
    call('eth_getTransactionByHash', [hash]),
    call('eth_getTransactionReceipt', [hash]),
  ]);
  if (!tx) throw new Error(`transaction ${hash} is not known to this node`);
  return { tx, receipt };
}

export function TxPage({ arg }) {
  const state = useLoad(() => loadTx(arg), arg);
  return <Loaded state={state} what="the transaction">{(data) => <TxView {...data} />}</Loaded>;
}

/** Ids in a decoded value that name a page: a link to it, anything else as text. */
const LINKED = {
  adapterId: 'model', parentId: 'model', modelId: 'model', baseModelId: 'model',
  datanetId: 'datanet', contributionId: 'contribution', receiptId: 'receipt',
};

const ROLES = ['contributor', 'adapter author', 'lineage', 'validator', 'treasury', 'challenger'];

/**
 * A hex string the node wrote as a quantity (no leading zero digits; not an address, hash or
 * signature by its length): the native payloads and RPC answers write numbers so.
 */
function quantity(value) {
  return typeof value === 'string' && /^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(value) && value.length !== 42 && value.length <= 34
    ? BigInt(value) : null;
}

function Value({ name, value }) {
  const q = quantity(value);
  if (q !== null) return <Value name={name} value={q} />;
  if (name === 'role' && (typeof value === 'bigint' || typeof value === 'number')) return <span>{ROLES[Number(value)] ?? String(value)} ({String(value)})</span>;
  if (Array.isArray(value)) {
    const page = name === 'contributionIds' ? 'contribution' : name === 'datanetIds' ? 'datanet' : null;
    if (value.length === 0) return <span class="muted">[]</span>;
    return <span>[{value.map((v, i) => <span key={i}>{i ? ', ' : ''}{page ? <Link to={`${page}/${num(v)}`}>{num(v)}</Link> : <Value value={v} />}</span>)}]</span>;
  }
  if (typeof value === 'bigint' || typeof value === 'number') {
    if (LINKED[name]) return <Link to={`${LINKED[name]}/${value}`}>{String(value)}</Link>;
    if (/fee|amount|value|bond|balance|stake|refund|slashed/i.test(name ?? '')) return <Amount wei={value} exact />;
    return <span class="mono">{String(value)}</span>;
  }
  if (typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value)) return <AddressLink address={value} full />;
  if (typeof value === 'boolean') return <span>{String(value)}</span>;
  if (value && typeof value === 'object') {
    return <Fields rows={Object.entries(value).map(([k, v]) => [k, <Value name={k} value={v} />])} />;
  }
  return <span class="mono hash">{String(value)}</span>;
}

function TxView({ tx, receipt }) {
  const type = num(tx.type);
  const payloadKey = NATIVE_PAYLOAD[type];
  const payload = payloadKey ? tx[payloadKey] : null;
  const decoded = decodeCall(tx.to, tx.input);
  const status = receipt ? (num(receipt.status) === 1 ? 'success' : 'reverted') : 'pending';
  return (
    <>
      <h1>Transaction</h1>
      <p class="mono hash">{tx.hash}</p>
      <Section>
        <Fields rows={[
          ['type', <span class={`txtype t${type}`} data-tx-type={type}>{TX_TYPES[type] ?? 'unknown'} ({tx.type})</span>],
          ['status', <span class={`status ${status}`}>{status}</span>],
          ['block', tx.blockNumber ? <BlockLink number={num(tx.blockNumber)} /> : <span class="muted">pending</span>],
          tx.blockTimestamp && ['time', when(num(tx.blockTimestamp))],
          ['from', <AddressLink address={tx.from} full />],
          ['to', tx.to ? <AddressLink address={tx.to} full /> : <span class="muted">contract creation {receipt?.contractAddress && <AddressLink address={receipt.contractAddress} full />}</span>],
          ['value', <Amount wei={tx.value} exact />],
          ['nonce', num(tx.nonce)],
          ['gas', `${receipt ? num(receipt.gasUsed).toLocaleString('en-US') : '?'} used of ${num(tx.gas).toLocaleString('en-US')}`],
          receipt?.effectiveGasPrice && ['gas price', <Amount wei={receipt.effectiveGasPrice} exact />],
        ]} />
      </Section>
      {payload && (
        <Section title={`${TX_TYPES[type]} payload`} id="native-payload">
          <div data-native={payloadKey}>
            <Fields rows={Object.entries(payload).map(([k, v]) => [k, <Value name={k} value={v} />])} />
          </div>
        </Section>
      )}
      {decoded && (
        <Section title={`Call: ${decoded.contract}.${decoded.name}`} id="decoded-call">
          <Fields rows={decoded.inputs.map((input, i) => [input.name || `arg ${i}`, <Value name={input.name} value={decoded.args?.[i]} />])} />
        </Section>
      )}
      {!decoded && tx.input && tx.input !== '0x' && (
        <Section title="Input"><p class="mono hash wrap">{tx.input}</p></Section>
      )}
      {receipt && (
        <Section title={`Logs (${receipt.logs.length})`} id="logs">
          {receipt.logs.length === 0 ? <p class="muted">No log.</p> : receipt.logs.map((log) => {
            const event = decodeLog(log);
            return (
              <div class="log" key={num(log.logIndex)} data-event={event ? `${event.contract}.${event.name}` : ''}>
                <div class="log-head">
                  <span class="muted">#{num(log.logIndex)}</span> <AddressLink address={log.address} />{' '}
                  <strong>{event ? event.name : 'log'}</strong>
                </div>
                {event ? (
                  <Fields rows={Object.entries(event.args).map(([k, v]) => [k, <Value name={k} value={v} />])} />
                ) : (
                  <Fields rows={[...log.topics.map((t, i) => [`topic ${i}`, <Hash value={t} />]), ['data', <span class="mono hash wrap">{log.data}</span>]]} />
                )}
              </div>
            );
          })}
        </Section>
      )}
    </>
  );
}
