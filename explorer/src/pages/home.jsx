// The home page: the chain at a glance, the latest blocks and inference receipts, datanets and
// models; the block list grows as blocks arrive (eth_subscribe newHeads).

import { useEffect, useState } from 'preact/hooks';
import { batch, batchAll, call } from '../rpc.js';
import { num, readViews } from '../chain.js';
import { AddressLink, Amount, BlockLink, Link, Loaded, Section, useHead, useLoad } from '../ui.jsx';
import { when } from '../format.js';

const LATEST = 10;
const RECEIPTS = 8;
const STATUS = ['pending', 'challenged', 'settled', 'reversed'];

async function loadHome() {
  const [head, chainId, listed, counts] = await Promise.all([
    call('eth_blockNumber').then(num),
    call('eth_chainId').then(num),
    batchAll([['ai_listDatanets', [{ limit: 20 }]], ['ai_listModels', [{ limit: 20 }]]]),
    readViews([['Inference', 'receiptCount'], ['Inference', 'challengeCount'], ['Governance', 'proposalCount']]),
  ]);
  const [receiptCount, challengeCount, proposalCount] = counts.map((r) => (r.error ? 0 : Number(r.result)));
  const numbers = [];
  for (let n = head; n >= 0 && numbers.length < LATEST; n--) numbers.push(n);
  const ids = [];
  for (let id = receiptCount; id >= 1 && ids.length < RECEIPTS; id--) ids.push(id);
  const [blocks, receipts] = await Promise.all([
    batchAll(numbers.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, false]])),
    readViews(ids.map((id) => ['Inference', 'getReceipt', [BigInt(id)]])),
  ]);
  return {
    head, chainId, receiptCount, challengeCount, proposalCount,
    datanets: listed[0], models: listed[1],
    blocks: blocks.filter(Boolean),
    receipts: receipts.filter((r) => !r.error).map((r) => r.result),
  };
}

export function Home() {
  const state = useLoad(loadHome, 'home');
  return <Loaded state={state} what="the chain">{(data) => <HomeView data={data} />}</Loaded>;
}

function HomeView({ data }) {
  const head = useHead();
  const [blocks, setBlocks] = useState(data.blocks);
  useEffect(() => setBlocks(data.blocks), [data]);
  // New heads: fetch only the blocks not shown yet (at most LATEST).
  useEffect(() => {
    const top = blocks.length ? num(blocks[0].number) : -1;
    if (!head || head <= top) return;
    const wanted = [];
    for (let n = head; n > top && wanted.length < LATEST; n--) wanted.push(n);
    batch(wanted.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, false]])).then((replies) => {
      const fresh = replies.map((r) => r.result).filter(Boolean);
      setBlocks((old) => {
        const seen = new Set(old.map((b) => b.hash));
        return [...fresh.filter((b) => !seen.has(b.hash)), ...old].sort((a, b) => num(b.number) - num(a.number)).slice(0, LATEST);
      });
    });
  }, [head]);
  return (
    <>
      <div class="stats">
        <div class="stat"><span class="label">head</span><span class="value" data-head>{Math.max(head, data.head).toLocaleString('en-US')}</span></div>
        <div class="stat"><span class="label">chain id</span><span class="value">{data.chainId}</span></div>
        <div class="stat"><span class="label">datanets</span><span class="value">{data.datanets.total}</span></div>
        <div class="stat"><span class="label">models</span><span class="value">{data.models.total}</span></div>
        <div class="stat"><span class="label">receipts</span><span class="value">{data.receiptCount}</span></div>
        <div class="stat"><span class="label">challenges</span><span class="value">{data.challengeCount}</span></div>
        <div class="stat"><span class="label"><Link to="governance">proposals</Link></span><span class="value">{data.proposalCount}</span></div>
      </div>
      <div class="columns">
        <Section title="Latest blocks">
          <table class="list" id="latest-blocks">
            <thead><tr><th>block</th><th>time</th><th>txs</th><th>gas used</th><th>proposer</th></tr></thead>
            <tbody>
              {blocks.map((b) => (
                <tr key={b.hash} data-block={num(b.number)}>
                  <td><BlockLink number={num(b.number)} /></td>
                  <td>{when(num(b.timestamp))}</td>
                  <td>{b.transactions.length}</td>
                  <td>{num(b.gasUsed).toLocaleString('en-US')}</td>
                  <td><AddressLink address={b.miner} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
        <Section title="Latest inference receipts">
          {data.receipts.length === 0 ? <p class="muted">No inference yet.</p> : (
            <table class="list" id="latest-receipts">
              <thead><tr><th>receipt</th><th>adapter</th><th>fee</th><th>status</th><th>block</th></tr></thead>
              <tbody>
                {data.receipts.map((r) => (
                  <tr key={String(r.id)} data-receipt={String(r.id)}>
                    <td><Link to={`receipt/${r.id}`}>receipt {String(r.id)}</Link></td>
                    <td><Link to={`model/${r.adapterId}`}>adapter {String(r.adapterId)}</Link></td>
                    <td><Amount wei={r.fee} /></td>
                    <td><span class={`status s${r.status}`}>{STATUS[Number(r.status)] ?? r.status}</span></td>
                    <td><BlockLink number={r.blockNumber} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      </div>
      <div class="columns">
        <Section title="Datanets">
          {data.datanets.datanets.length === 0 ? <p class="muted">No datanet yet.</p> : (
            <table class="list">
              <thead><tr><th>datanet</th><th>name</th><th>accepted</th><th>versions</th></tr></thead>
              <tbody>
                {data.datanets.datanets.map((d) => (
                  <tr key={d.id}>
                    <td><Link to={`datanet/${d.id}`}>datanet {d.id}</Link></td>
                    <td>{d.name}</td>
                    <td>{d.acceptedCount} of {d.contributionCount}</td>
                    <td>{d.versionCount}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
        <Section title="Models and adapters">
          {data.models.models.length === 0 ? <p class="muted">No model yet.</p> : (
            <table class="list">
              <thead><tr><th>model</th><th>kind</th><th>parent</th><th>trained on</th></tr></thead>
              <tbody>
                {data.models.models.map((m) => (
                  <tr key={m.id}>
                    <td><Link to={`model/${m.id}`}>model {m.id}</Link></td>
                    <td>{m.kind === 1 ? 'base model' : 'adapter'}</td>
                    <td>{m.parentId ? <Link to={`model/${m.parentId}`}>model {m.parentId}</Link> : <span class="muted">–</span>}</td>
                    <td>{m.datanetIds.map((d, i) => <span key={d}>{i ? ', ' : ''}<Link to={`datanet/${d}?version=${m.datanetVersions[i]}`}>datanet {d} v{m.datanetVersions[i]}</Link></span>)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      </div>
    </>
  );
}
