// Validators: the current set and its power, every account seen staking or proposing lately with
// its stake, unbonding and jail, the slashes and jails of the latest blocks, and the challenges
// of receipts with their committees.

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
  const s = PRECOMPILES.Staking;
  const [set, params, blocks, events, firstPage] = await Promise.all([
    call('ai_getValidatorSet', []),
    call('ai_getParams', []),
    batchAll(numbers.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, false]])),
    logs({ address: s.address, topics: [['Staked', 'Unstaked', 'Slashed', 'Jailed', 'Unjailed'].map((e) => topic('Staking', e))] }, head - RECENT + 1, head),
    call('ai_listChallenges', [{ start: 1, limit: 1 }]),
  ]);
  const decoded = events.map((log) => ({ log, e: decodeLog(log) })).filter((x) => x.e);
  const accounts = new Map();
  const see = (a) => { if (a && !/^0x0{40}$/.test(a) && accounts.size < MAX_ACCOUNTS) accounts.set(a.toLowerCase(), a); };
  set.forEach((v) => see(v.address));
  blocks.forEach((b) => b && see(b.miner));
  decoded.forEach(({ e }) => see(e.args.account ?? e.args.validator));
  const list = [...accounts.values()];
  const stakes = await batchAll(list.map((a) => ['ai_getStake', [a]]));
  const proposed = new Map();
  blocks.forEach((b) => b && proposed.set(b.miner.toLowerCase(), (proposed.get(b.miner.toLowerCase()) ?? 0) + 1));
  const power = new Map(set.map((v) => [v.address.toLowerCase(), big(v.power)]));
  const rows = list.map((a, i) => ({ address: a, stake: stakes[i], power: power.get(a.toLowerCase()), proposed: proposed.get(a.toLowerCase()) ?? 0 }))
    .sort((x, y) => (big(y.stake.stake) > big(x.stake.stake) ? 1 : big(y.stake.stake) < big(x.stake.stake) ? -1 : 0));
  const total = firstPage.total;
  const challenges = total > 0 ? (await call('ai_listChallenges', [{ start: Math.max(1, total - CHALLENGES + 1), limit: CHALLENGES }])).challenges.reverse() : [];
  const punishments = decoded.filter(({ e }) => ['Slashed', 'Jailed', 'Unjailed'].includes(e.name)).reverse();
  return { head, set, params, rows, punishments, challenges, challengeCount: total, proposersOf: numbers.length };
}

export function ValidatorsPage() {
  const head = useHead();
  const state = useLoad(loadValidators, 'validators', head);
  return <Loaded state={state} what="validators">{(data) => <ValidatorsView {...data} />}</Loaded>;
}

function ValidatorsView({ head, set, params, rows, punishments, challenges, challengeCount, proposersOf }) {
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
      <Section title="Stakes" id="stakes">
        <table class="list">
          <thead><tr><th>account</th><th>stake</th><th>unbonding</th><th>jailed</th><th>in set</th><th>proposed (last {proposersOf})</th></tr></thead>
          <tbody>
            {rows.map((r) => {
              const jailed = num(r.stake.jailedUntil);
              return (
                <tr key={r.address} data-stake={r.address}>
                  <td><AddressLink address={r.address} /></td>
                  <td><Amount wei={big(r.stake.stake)} /></td>
                  <td>{big(r.stake.unbonding) > 0n ? <span><Amount wei={big(r.stake.unbonding)} /> until <BlockLink number={num(r.stake.releaseBlock)} /></span> : <span class="muted">–</span>}</td>
                  <td>{jailed > head ? <span class="status bad">until {jailed}</span> : <span class="muted">no</span>}</td>
                  <td>{r.power !== undefined ? 'yes' : <span class="muted">no</span>}</td>
                  <td>{r.proposed || <span class="muted">0</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      <Section title={`Slashes and jails in the last ${RECENT.toLocaleString('en-US')} blocks`} id="punishments">
        {punishments.length === 0 ? <p class="muted">None.</p> : (
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
        )}
      </Section>
      <Section title={`Challenges (${challengeCount})`} id="challenges">
        {challenges.length === 0 ? <p class="muted">No receipt has been challenged.</p> : (
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
        )}
      </Section>
    </>
  );
}
