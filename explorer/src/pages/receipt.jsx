// An inference receipt joined to everything behind it: the prompt and output (blobs, where this
// node holds them), the attribution as bars, the payout split to the wei (the RewardPending
// events its transaction emitted), the lineage of its adapter with the credited contributions
// marked, its challenge status, and a re-run on this node's sidecar on demand.

import { useState } from 'preact/hooks';
import { batch, call } from '../rpc.js';
import { PRECOMPILES, TREASURY, big, decodeLog, logs, num, readView, topic, uintTopic } from '../chain.js';
import { AddressLink, Amount, BlockLink, ErrorBox, Fields, Hash, Link, Loaded, Section, useHead, useLoad } from '../ui.jsx';
import { AttributionBars, LineageGraph } from '../graph.jsx';
import { ether, percentBp, utf8, weiText } from '../format.js';

export const RECEIPT_STATUS = ['pending', 'challenged', 'settled', 'reversed'];
const ROLES = ['contributor', 'adapter author', 'lineage', 'validator', 'treasury', 'challenger'];
/** Bytes of prompt and output shown (ai_getBlob reads at most 2 MiB a call). */
const TEXT_LIMIT = 64 * 1024;

/**
 * The receipt's own record (eth_call Inference.getReceipt: a fixed number of words), its blobs,
 * payout events and challenge: what the page shows first. Its ancestry (ai_getReceipt: each
 * credited contribution's contributor, the adapter's whole lineage) grows with the training set
 * and follows (loadAncestry).
 */
async function loadReceipt(id) {
  if (!/^\d+$/.test(id)) throw new Error(`"${id}" is not a receipt id`);
  const count = Number(await readView('Inference', 'receiptCount'));
  if (Number(id) < 1 || Number(id) > count) throw new Error(`receipt ${id} not found (this chain has ${count})`);
  const r = await readView('Inference', 'getReceipt', [BigInt(id)]);
  const block = num(r.blockNumber);
  const [blobs, payoutLogs, challenge, head] = await Promise.all([
    batch([['ai_getBlob', [r.promptHash, 0, TEXT_LIMIT]], ['ai_getBlob', [r.outputHash, 0, TEXT_LIMIT]]]),
    logs({ address: PRECOMPILES.Rewards.address, topics: [topic('Rewards', 'RewardPending'), null, uintTopic(r.id)] }, block, block),
    r.challengeId ? call('ai_getChallenge', [Number(r.challengeId)]) : null,
    call('eth_blockNumber').then(num),
  ]);
  const payouts = payoutLogs.map((log) => decodeLog(log)).filter(Boolean).map((e) => e.args);
  return { receipt: r, prompt: blobs[0].result ?? null, output: blobs[1].result ?? null, payouts, challenge, head };
}

export function ReceiptPage({ arg }) {
  const head = useHead();
  const state = useLoad(() => loadReceipt(arg), arg, head);
  const ancestry = useLoad(() => call('ai_getReceipt', [Number(arg)]), arg);
  return <Loaded state={state} what={`receipt ${arg}`}>{(data) => <ReceiptView {...data} ancestry={ancestry} />}</Loaded>;
}

function Text({ blob, hash, what }) {
  if (!blob) return <p class="muted">This node does not hold the {what} (blob <span class="mono">{hash.slice(0, 10)}…</span>).</p>;
  return <pre class="content" data-blob={what}>{utf8(blob.data)}{num(blob.size) > TEXT_LIMIT ? '\n…' : ''}</pre>;
}

function ReceiptView({ receipt: r, prompt, output, payouts, challenge, head, ancestry }) {
  const status = RECEIPT_STATUS[Number(r.status)] ?? String(r.status);
  const total = payouts.reduce((sum, p) => sum + big(p.amount), 0n);
  // The bars need only the record's ids and weights; ai_getReceipt adds who and which datanet.
  const detail = new Map((ancestry.data?.attributions ?? []).map((a) => [String(a.contributionId), a]));
  const attributions = r.contributionIds.map((cid, i) => ({
    contributionId: Number(cid), weightBp: Number(r.weightsBp[i]),
    contributor: detail.get(String(cid))?.contributor, datanetId: detail.get(String(cid))?.datanetId,
  }));
  const highlight = new Set(attributions.map((a) => `contribution:${a.contributionId}`));
  return (
    <>
      <h1>Inference receipt {String(r.id)}</h1>
      <Section>
        <Fields rows={[
          ['adapter', <Link to={`model/${r.adapterId}`}>adapter {String(r.adapterId)}</Link>],
          ['requester', <AddressLink address={r.user} full />],
          ['validator', <AddressLink address={r.validator} full />],
          ['fee', <Amount wei={r.fee} exact />],
          ['status', <span class={`status s${r.status}`} data-status={status}>{status}</span>],
          ['recorded', <BlockLink number={r.blockNumber} />],
          ['challenge window', Number(r.status) === 0 && head < num(r.releaseBlock)
            ? <span>open until block {String(r.releaseBlock)}</span>
            : <span>closed at block <BlockLink number={r.releaseBlock} /></span>],
          ['max tokens', String(r.maxTokens)],
          ['request hash', <Hash value={r.requestHash} />],
          ['engine profile', <Hash value={r.engineProfile} />],
          ['adapter weights', <Hash value={r.weightsHash} />],
        ]} />
      </Section>
      <div class="columns">
        <Section title="Prompt"><Text blob={prompt} hash={r.promptHash} what="prompt" /></Section>
        <Section title="Output"><Text blob={output} hash={r.outputHash} what="output" /></Section>
      </div>
      <Section title="Attribution" id="attribution">
        <AttributionBars attributions={attributions} />
      </Section>
      <Section title="Payout split" id="payouts">
        {payouts.length === 0 ? <p class="muted">No payout event found in block {String(r.blockNumber)}.</p> : (
          <>
            <table class="list">
              <thead><tr><th>to</th><th>role</th><th>share</th><th class="num">wei</th></tr></thead>
              <tbody>
                {payouts.map((p, i) => (
                  <tr key={i} data-payout={p.account} data-role={ROLES[Number(p.role)]} data-amount={String(p.amount)}>
                    <td>{p.account.toLowerCase() === TREASURY ? 'Treasury' : <AddressLink address={p.account} />}</td>
                    <td>{ROLES[Number(p.role)] ?? p.role}</td>
                    <td>{percentBp(Number((big(p.amount) * 1000000n) / (big(r.fee) || 1n)) / 100)}</td>
                    <td class="num mono" title={ether(p.amount)}>{big(p.amount).toLocaleString('en-US')}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr><th colSpan={3}>total {total === big(r.fee) ? '= the fee ✓' : `≠ the fee ${weiText(r.fee)}`}</th><td class="num mono" data-payout-total={String(total)}>{total.toLocaleString('en-US')}</td></tr>
              </tfoot>
            </table>
            <p class="muted">
              {Number(r.status) === 3 ? 'Reversed: an upheld challenge undid these payouts and refunded the fee.'
                : Number(r.status) === 2 ? 'Settled: these amounts are claimable.' : 'Held: these amounts become claimable when the challenge window closes.'}
            </p>
          </>
        )}
      </Section>
      <Section title="Challenge" id="challenge">
        {challenge ? <ChallengeView challenge={challenge} /> : <p class="muted">Never challenged.</p>}
      </Section>
      <Verify id={Number(r.id)} />
      <Section title="Lineage of the adapter" id="lineage">
        <p class="muted">Credited contributions are marked.</p>
        <Loaded state={ancestry} what="the lineage" secondary>{(found) => <LineageGraph lineage={found.lineage} highlight={highlight} />}</Loaded>
      </Section>
    </>
  );
}

export function ChallengeView({ challenge: c }) {
  return (
    <div data-challenge={c.id} data-outcome={c.outcome}>
      <Fields rows={[
        ['challenge', `${c.id}: ${c.outcome}`],
        ['challenger', <AddressLink address={c.challenger} />],
        ['accused', <AddressLink address={c.accused} />],
        ['bond', <Amount wei={c.bond} exact />],
        ['opened', <BlockLink number={c.openedBlock} />],
        ['verdicts until', `block ${c.deadline}`],
        ['power', `upheld ${c.upheldPower}, rejected ${c.rejectedPower} of ${c.totalPower}`],
        c.slashed ? ['slashed', <Amount wei={c.slashed} exact />] : null,
      ]} />
      <table class="list">
        <thead><tr><th>committee member</th><th>power</th><th>verdict</th></tr></thead>
        <tbody>
          {c.verdicts.map((v) => (
            <tr key={v.member}><td><AddressLink address={v.member} /></td><td>{String(v.power)}</td><td>{v.verdict}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Verify({ id }) {
  const [state, setState] = useState(null);
  const run = () => {
    setState({ running: true });
    call('ai_verifyReceipt', [id]).then((result) => setState({ result }), (error) => setState({ error }));
  };
  return (
    <Section title="Verification" id="verify">
      <p class="muted">Re-run this receipt on this node's sidecar, from the chain and the blobs alone, and compare.</p>
      <button type="button" id="verify-button" onClick={run} disabled={state?.running}>{state?.running ? 'Re-running…' : 'Verify'}</button>
      {state?.error && <ErrorBox error={state.error} />}
      {state?.result && (
        <div data-verdict={state.result.verdict}>
          <Fields rows={[
            ['verdict', <strong>{state.result.verdict}</strong>],
            ['output', state.result.outputMatches ? 'matches' : 'differs'],
            ['attribution', `${state.result.attributionMatches ? 'matches' : 'differs'} (${state.result.attributionDiffBp} bp apart, tolerance ${state.result.toleranceBp} bp)`],
            state.result.reason && ['reason', state.result.reason],
            ['verifier', <AddressLink address={state.result.verifier} />],
          ]} />
        </div>
      )}
    </Section>
  );
}
