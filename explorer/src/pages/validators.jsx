// Validators: the current set and its power, the stake, unbonding and jail of the set and of the
// latest proposers; then (loaded after the page: the node scans blocks for them) the accounts that
// staked, the slashes and jails of the latest blocks, and the challenges of receipts.

import { batchAll, call } from '../rpc.js';
import { PRECOMPILES, big, decodeLog, logs, num, topic } from '../chain.js';
import { AddressLink, Amount, BlockLink, Link, Loaded, Section, TxLink, useHead, useLoad } from '../ui.jsx';

/** Staking events are looked up in this many latest blocks (one bounded eth_getLogs). */
const RECENT = 2000;
/** Latest blocks whose proposers are listed. */
const PROPOSERS = 20;
/** Accounts whose stake is read at most. */
const MAX_ACCOUNTS = 100;
const CHALLENGES = 20;

async function loadValidators() {
  const head = num(await call('eth_blockNumber'));
  const numbers = [];
  for (let n = head; n >= 0 && numbers.length < PROPOSERS; n--) numbers.push(n);
  const [set, params, blocks] = await Promise.all([
    call('ai_getValidatorSet', []),
    call('ai_getParams', []),
    batchAll(numbers.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, false]])),
  ]);
  const accounts = new Map();
  const see = (a) => { if (a && !/^0x0{40}$/.test(a) && accounts.size < MAX_ACCOUNTS) accounts.set(a.toLowerCase(), a); };
  set.forEach((v) => see(v.address));
  blocks.forEach((b) => b && see(b.miner));
  const list = [...accounts.values()];
  const stakes = await batchAll(list.map((a) => ['ai_getStake', [a]]));
  const proposed = new Map();
  blocks.forEach((b) => b && proposed.set(b.miner.toLowerCase(), (proposed.get(b.miner.toLowerCase()) ?? 0) + 1));
  const power = new Map(set.map((v) => [v.address.toLowerCase(), big(v.power)]));
  const rows = list.map((a, i) => ({ address: a, stake: stakes[i], power: power.get(a.toLowerCase()), proposed: proposed.get(a.toLowerCase()) ?? 0 }))
    .sort((x, y) => (big(y.stake.stake) > big(x.stake.stake) ? 1 : big(y.stake.stake) < big(x.stake.stake) ? -1 : 0));
  return { head, set, params, rows, proposersOf: numbers.length };
}

/** Staking events of the latest RECENT blocks (the node scans them: loaded after the page). */
async function loadStakingEvents(head) {
  const events = await logs({ address: PRECOMPILES.Staking.address, topics: [['Staked', 'Unstaked', 'Slashed', 'Jailed', 'Unjailed'].map((e) => topic('Staking', e))] },
    head - RECENT + 1, head);
  const decoded = events.map((log) => ({ log, e: decodeLog(log) })).filter((x) => x.e);
  const accounts = [...new Set(decoded.map(({ e }) => (e.args.account ?? e.args.validator).toLowerCase()))].slice(0, MAX_ACCOUNTS);
  const stakes = await batchAll(accounts.map((a) => ['ai_getStake', [a]]));
  return {
    punishments: decoded.filter(({ e }) => ['Slashed', 'Jailed', 'Unjailed'].includes(e.name)).reverse(),
    stakers: accounts.map((a, i) => ({ address: a, stake: stakes[i], staked: decoded.filter(({ e }) => e.name === 'Staked' && e.args.account.toLowerCase() === a).length })),
  };
}

async function loadChallenges() {
  const first = await call('ai_listChallenges', [{ start: 1, limit: 1 }]);
  const total = first.total;
  const challenges = total > 0 ? (await call('ai_listChallenges', [{ start: Math.max(1, total - CHALLENGES + 1), limit: CHALLENGES }])).challenges.reverse() : [];
  return { total, challenges };
}

export function ValidatorsPage() {
  const head = useHead();
  const state = useLoad(loadValidators, 'validators', head);
  return <Loaded state={state} what="validators">{(data) => <ValidatorsView {...data} />}</Loaded>;
}

function ValidatorsView({ head, set, params, rows, proposersOf }) {
  const epochLength = num(params['staking.epoch_length']);
  return (
    <>
      <h1>Validators</h1>
      <p class="muted">
        Epoch {epochLength ? Math.floor(head / epochLength) : '?'} (every {epochLength} blocks); minimum stake <Amount wei={big(params['staking.min_stake'])} />;
        a slash takes {num(params['staking.slash_fraction_bp']) / 100}% and jails for {num(params['staking.jail_blocks'])} blocks.
      </p>
      <Section title={`Validator set of this epoch (${set.length})`} id="validator-set">
        {set.length === 0 ? <p class="muted">No staked validator in this epoch's set yet (a stake takes effect at the next epoch).</p> : (
          <table class="list">
            <thead><tr><th>validator</th><th class="num">voting power</th></tr></thead>
            <tbody>{set.map((v) => <tr key={v.address} data-validator={v.address}><td><AddressLink address={v.address} full /></td><td class="num">{big(v.power).toLocaleString('en-US')}</td></tr>)}</tbody>
          </table>
        )}
      </Section>
      <Section title="Stakes of the set and of the latest proposers" id="stakes">
        <StakeTable rows={rows} head={head} proposersOf={proposersOf} />
      </Section>
      <StakingEvents head={head} />
      <Challenges head={head} />
    </>
  );
}

function StakeTable({ rows, head, proposersOf }) {
  return (
    <table class="list">
      <thead><tr><th>account</th><th>stake</th><th>unbonding</th><th>jailed</th><th>in set</th>{proposersOf ? <th>proposed (last {proposersOf})</th> : <th>stakes</th>}</tr></thead>
      <tbody>
        {rows.map((r) => {
          const jailed = num(r.stake.jailedUntil);
          return (
            <tr key={r.address} data-stake={r.address}>
              <td><AddressLink address={r.address} /></td>
              <td><Amount wei={big(r.stake.stake)} /></td>
              <td>{big(r.stake.unbonding) > 0n ? <span><Amount wei={big(r.stake.unbonding)} /> until <BlockLink number={num(r.stake.releaseBlock)} /></span> : <span class="muted">–</span>}</td>
              <td>{jailed > head ? <span class="status bad">until {jailed}</span> : <span class="muted">no</span>}</td>
              <td>{r.power !== undefined ? 'yes' : <span class="muted">{r.power === undefined && !proposersOf ? '–' : 'no'}</span>}</td>
              <td>{proposersOf ? (r.proposed || <span class="muted">0</span>) : r.staked}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function StakingEvents({ head }) {
  const state = useLoad(() => loadStakingEvents(head), 'staking', head);
  return (
    <>
      <Section title={`Stakers in the last ${RECENT.toLocaleString('en-US')} blocks`} id="stakers">
        <Loaded state={state} what="staking events" secondary>{({ stakers }) => stakers.length === 0 ? <p class="muted">None.</p>
          : <StakeTable rows={stakers} head={head} proposersOf={0} />}</Loaded>
      </Section>
      <Section title={`Slashes and jails in the last ${RECENT.toLocaleString('en-US')} blocks`} id="punishments">
        <Loaded state={state} what="slashes and jails" secondary>{({ punishments }) => punishments.length === 0 ? <p class="muted">None.</p> : (
          <table class="list">
            <thead><tr><th>block</th><th>event</th><th>validator</th><th>detail</th><th>transaction</th></tr></thead>
            <tbody>
              {punishments.map(({ log, e }) => (
                <tr key={`${log.transactionHash}:${num(log.logIndex)}`} data-event={e.name}>
                  <td><BlockLink number={num(log.blockNumber)} /></td>
                  <td>{e.name}</td>
                  <td><AddressLink address={e.args.validator} /></td>
                  <td>{e.name === 'Slashed' ? <Amount wei={e.args.amount} /> : e.name === 'Jailed' ? `until block ${e.args.releaseBlock}` : <Amount wei={e.args.stake} />}</td>
                  <td><TxLink hash={log.transactionHash} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}</Loaded>
      </Section>
    </>
  );
}

function Challenges({ head }) {
  const state = useLoad(loadChallenges, 'challenges', head);
  return (
    <Section title={`Challenges${state.data ? ` (${state.data.total})` : ''}`} id="challenges">
      <Loaded state={state} what="challenges" secondary>{({ challenges }) => challenges.length === 0 ? <p class="muted">No receipt has been challenged.</p> : (
        <table class="list">
          <thead><tr><th>challenge</th><th>receipt</th><th>accused</th><th>challenger</th><th>outcome</th><th>verdicts owed</th></tr></thead>
          <tbody>
            {challenges.map((c) => (
              <tr key={c.id} data-challenge={c.id}>
                <td>{c.id}</td>
                <td><Link to={`receipt/${c.receiptId}`}>receipt {c.receiptId}</Link></td>
                <td><AddressLink address={c.accused} /></td>
                <td><AddressLink address={c.challenger} /></td>
                <td>{c.outcome}</td>
                <td>{c.owing.length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}</Loaded>
    </Section>
  );
}
