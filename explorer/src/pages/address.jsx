// An account: balance, nonce, code, and what the AI precompiles hold for it (stake and jail,
// rewards, inference deposit), with its reward events of the latest blocks.

import { batchAll, call } from '../rpc.js';
import { PRECOMPILES, addressName, addressTopic, big, decodeLog, logs, num, topic } from '../chain.js';
import { Amount, BlockLink, Fields, Link, Loaded, Section, TxLink, useHead, useLoad } from '../ui.jsx';
import { checksum } from '../format.js';

/** Reward events are looked up in this many latest blocks (one bounded eth_getLogs). */
const RECENT = 2000;
const ROLES = ['contributor', 'author', 'lineage', 'validator', 'treasury', 'challenger'];

async function loadAddress(address) {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new Error(`"${address}" is not an address (0x and 40 hex digits)`);
  const head = num(await call('eth_blockNumber'));
  const [balance, nonce, code, stake, rewards, deposit] = await batchAll([
    ['eth_getBalance', [address, 'latest']],
    ['eth_getTransactionCount', [address, 'latest']],
    ['eth_getCode', [address, 'latest']],
    ['ai_getStake', [address]],
    ['ai_getRewards', [address]],
    ['ai_getDeposit', [address]],
  ]);
  return { address, head, balance, nonce, code, stake, rewards, deposit };
}

/** The account's reward events of the latest RECENT blocks (the node scans them: loaded after the page). */
async function loadRewardEvents(address, head) {
  const found = await logs({
    address: PRECOMPILES.Rewards.address,
    topics: [[topic('Rewards', 'RewardPending'), topic('Rewards', 'RewardAccrued'), topic('Rewards', 'RewardRevoked'), topic('Rewards', 'RewardClaimed')], addressTopic(address)],
  }, head - RECENT + 1, head);
  return found.slice(-100).reverse();
}

export function AddressPage({ arg }) {
  const head = useHead();
  const state = useLoad(() => loadAddress(arg), arg, head);
  return <Loaded state={state} what="the account">{(data) => <AddressView {...data} />}</Loaded>;
}

function AddressView({ address, head, balance, nonce, code, stake, rewards, deposit }) {
  const name = addressName(address);
  const jailed = num(stake.jailedUntil);
  return (
    <>
      <h1>{name ? `${name} precompile` : 'Account'}</h1>
      <p class="mono hash">{checksum(address)}</p>
      <Section>
        <Fields rows={[
          ['balance', <Amount wei={balance} exact />],
          ['nonce', num(nonce)],
          ['code', code && code !== '0x' ? `${(code.length - 2) / 2} bytes` : <span class="muted">none</span>],
        ]} />
      </Section>
      <div class="columns">
        <Section title="Stake">
          <Fields rows={[
            ['stake', <Amount wei={big(stake.stake)} exact />],
            ['unbonding', <Amount wei={big(stake.unbonding)} exact />],
            big(stake.unbonding) > 0n && ['released at block', <BlockLink number={num(stake.releaseBlock)} />],
            ['jailed', jailed > head ? <span class="status bad">until block {jailed}</span> : <span class="muted">no</span>],
          ]} />
        </Section>
        <Section title="Rewards">
          <Fields rows={[
            ['earned', <Amount wei={big(rewards.earned)} exact />],
            ['claimable', <Amount wei={big(rewards.claimable)} exact />],
            ['pending', <Amount wei={big(rewards.pending)} exact />],
          ]} />
        </Section>
        <Section title="Inference deposit">
          <Fields rows={Object.entries(deposit).map(([k, v]) => [k, /time|block/i.test(k) ? num(v) : <Amount wei={big(v)} exact />])} />
        </Section>
      </div>
      <RewardEvents address={address} head={head} />
    </>
  );
}

function RewardEvents({ address, head }) {
  const state = useLoad(() => loadRewardEvents(address, head), address, head);
  return (
    <Section title={`Reward events in the last ${RECENT.toLocaleString('en-US')} blocks`} id="reward-events">
      <Loaded state={state} what="reward events" secondary>{(rewardLogs) => rewardLogs.length === 0 ? <p class="muted">None.</p> : (
          <table class="list">
            <thead><tr><th>block</th><th>event</th><th>receipt</th><th>role</th><th>amount</th><th>transaction</th></tr></thead>
            <tbody>
              {rewardLogs.map((log) => {
                const e = decodeLog(log);
                return (
                  <tr key={`${log.transactionHash}:${num(log.logIndex)}`}>
                    <td><BlockLink number={num(log.blockNumber)} /></td>
                    <td>{e?.name}</td>
                    <td>{e?.args.receiptId ? <Link to={`receipt/${e.args.receiptId}`}>receipt {String(e.args.receiptId)}</Link> : <span class="muted">–</span>}</td>
                    <td>{e?.args.role !== undefined ? ROLES[Number(e.args.role)] : <span class="muted">–</span>}</td>
                    <td><Amount wei={e?.args.amount} /></td>
                    <td><TxLink hash={log.transactionHash} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
      )}</Loaded>
    </Section>
  );
}
