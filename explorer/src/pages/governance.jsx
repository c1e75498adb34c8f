// Governance: the latest proposals with their tallies and each vote (VoteCast events over the
// proposal's voting period), the upgrade schedule (ai_getUpgrades: each named rule change at its
// height, and whether this node's release has it), and every protocol parameter's current value.

import { batch, call } from '../rpc.js';
import { PRECOMPILES, big, decodeLog, num, readView, topic, uintTopic, MAX_LOG_RANGE } from '../chain.js';
import { AddressLink, Amount, BlockLink, Link, Loaded, Section, TxLink, useHead, useLoad } from '../ui.jsx';

const PROPOSALS = 20;

async function loadGovernance() {
  const [count, params, head, upgrades] = await Promise.all([
    readView('Governance', 'proposalCount').then(Number),
    call('ai_getParams', []),
    call('eth_blockNumber').then(num),
    call('ai_getUpgrades', []),
  ]);
  const ids = [];
  for (let id = count; id >= 1 && ids.length < PROPOSALS; id--) ids.push(id);
  const proposals = (await batch(ids.map((id) => ['ai_getProposal', [id]]))).filter((r) => r.result).map((r) => r.result);
  const g = PRECOMPILES.Governance;
  const votes = await batch(proposals.map((p) => {
    const from = p.startBlock;
    const to = Math.min(p.endBlock, head, from + MAX_LOG_RANGE - 1);
    return ['eth_getLogs', [{ address: g.address, topics: [topic('Governance', 'VoteCast'), uintTopic(p.id)], fromBlock: `0x${from.toString(16)}`, toBlock: `0x${Math.max(from, to).toString(16)}` }]];
  }));
  return { count, head, params, upgrades, proposals: proposals.map((p, i) => ({ ...p, votes: (votes[i].result ?? []).map((log) => ({ log, e: decodeLog(log) })).filter((v) => v.e) })) };
}

export function GovernancePage() {
  const head = useHead();
  const state = useLoad(loadGovernance, 'governance', head);
  return <Loaded state={state} what="governance">{(data) => <GovernanceView {...data} />}</Loaded>;
}

function stateOf(p, head) {
  if (p.executed) return 'executed';
  if (p.closed) return 'closed';
  if (head <= p.endBlock) return 'voting';
  if (head < p.executableBlock) return 'waiting';
  return 'closed';
}

/** What a proposal does, by its kind: set a parameter (0), deploy an adapter (1), schedule an upgrade (2). */
function Subject({ p }) {
  const kind = Number(p.kind ?? 0);
  if (kind === 1) return <>deploy adapter <Link to={`model/${p.value}`}>{String(p.value)}</Link> (bond <Amount wei={p.bond} />)</>;
  if (kind === 2) return <>upgrade <span class="mono">{p.param}</span> at block {String(p.value)}</>;
  return <>set <span class="mono">{p.param}</span> to {String(p.value)}</>;
}

function GovernanceView({ count, head, params, upgrades, proposals }) {
  return (
    <>
      <h1>Governance</h1>
      <Section title={`Proposals (${count})`} id="proposals">
        {proposals.length === 0 ? <p class="muted">No proposal yet.</p> : proposals.map((p) => (
          <div class="proposal" key={p.id} data-proposal={p.id}>
            <h3 data-kind={Number(p.kind ?? 0)}>Proposal {p.id}: <Subject p={p} /> <span class={`status ${stateOf(p, head)}`}>{stateOf(p, head)}</span></h3>
            <p class="muted">
              by <AddressLink address={p.proposer} /> at block <BlockLink number={p.startBlock} />; votes until block {p.endBlock},
              executable from block {p.executableBlock}; stakes of epoch {p.snapshotEpoch}.
            </p>
            <Tally p={p} />
            {p.votes.length > 0 && (
              <table class="list">
                <thead><tr><th>voter</th><th>vote</th><th class="num">weight</th><th>block</th><th>transaction</th></tr></thead>
                <tbody>
                  {p.votes.map(({ log, e }) => (
                    <tr key={`${log.transactionHash}:${num(log.logIndex)}`} data-vote={e.args.voter}>
                      <td><AddressLink address={e.args.voter} /></td>
                      <td>{e.args.support ? 'yes' : 'no'}</td>
                      <td class="num">{big(e.args.weight).toLocaleString('en-US')}</td>
                      <td><BlockLink number={num(log.blockNumber)} /></td>
                      <td><TxLink hash={log.transactionHash} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        ))}
      </Section>
      <Section title={`Upgrades (${upgrades.scheduled.length} scheduled)`} id="upgrades">
        {upgrades.scheduled.length === 0 ? <p class="muted">No upgrade scheduled.</p> : (
          <table class="list">
            <thead><tr><th>upgrade</th><th class="num">at block</th><th>state</th><th>this node</th><th>proposal</th><th>info</th></tr></thead>
            <tbody>
              {upgrades.scheduled.map((u) => (
                <tr key={u.name} data-upgrade={u.name} data-height={num(u.height)} data-known={String(u.known)}>
                  <td class="mono">{u.name}</td>
                  <td class="num">{head >= num(u.height) ? <BlockLink number={num(u.height)} /> : num(u.height).toLocaleString('en-US')}</td>
                  <td>{head >= num(u.height) ? 'applied' : `in ${num(u.height) - head} blocks`}</td>
                  <td>{u.known ? <span class="status good">has it{u.doc ? `: ${u.doc}` : ''}</span> : <span class="status bad">lacks it: it stops at that block</span>}</td>
                  <td>proposal {num(u.proposalId)}</td>
                  <td>{u.info}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p class="muted">Upgrades this node's release knows: {Object.keys(upgrades.known).join(', ') || 'none'}.</p>
      </Section>
      <Section title="Parameters" id="params">
        <table class="list">
          <thead><tr><th>parameter</th><th class="num">value</th></tr></thead>
          <tbody>
            {Object.entries(params).map(([name, value]) => (
              <tr key={name}><td class="mono">{name}</td><td class="num mono">{name === 'treasury' ? <AddressLink address={`0x${big(value).toString(16).padStart(40, '0')}`} /> : big(value).toLocaleString('en-US')}</td></tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}

function Tally({ p }) {
  const yes = big(p.yesVotes);
  const no = big(p.noVotes);
  const total = big(p.totalPower) || 1n;
  const pct = (x) => Number((x * 10000n) / total) / 100;
  return (
    <div class="tally" data-yes={String(yes)} data-no={String(no)}>
      <div class="tally-track">
        <div class="tally-yes" style={{ width: `${pct(yes)}%` }} />
        <div class="tally-no" style={{ width: `${pct(no)}%` }} />
      </div>
      <span class="muted">yes {yes.toLocaleString('en-US')} · no {no.toLocaleString('en-US')} of {big(p.totalPower).toLocaleString('en-US')} total power</span>
    </div>
  );
}
