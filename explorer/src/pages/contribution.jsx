// A contribution: who gave what under which license, its content when this node holds it, its
// curation history (the Datanets events that name it), and its Merkle proof against a published
// version's root, checked in this page (merkle.js).

import { batch, call } from '../rpc.js';
import { PRECOMPILES, decodeLog, logs, num, readView, topic, uintTopic } from '../chain.js';
import { verifyProof, leafHash } from '../merkle.js';
import { AddressLink, BlockLink, Fields, Hash, Link, Loaded, Section, TxLink, useLoad } from '../ui.jsx';
import { utf8, when } from '../format.js';
import { CONTRIBUTION_STATUS } from './datanet.jsx';

/** Bytes of the content shown. */
const PREVIEW = 4096;
/** Curation is looked for in this many blocks from the submission (the node's log range). */
const CURATION_WINDOW = 10000;

async function loadContribution(id) {
  if (!/^\d+$/.test(id)) throw new Error(`"${id}" is not a contribution id`);
  const c = await call('ai_getContribution', [Number(id)]);
  const head = num(await call('eth_blockNumber'));
  const d = PRECOMPILES.Datanets;
  const last = Math.min(head, c.blockNumber + CURATION_WINDOW - 1);
  const [datanet, curated, fate, content] = await Promise.all([
    call('ai_getDatanet', [c.datanetId]),
    logs({ address: d.address, topics: [topic('Datanets', 'ContributionCurated'), uintTopic(c.id)] }, c.blockNumber, last),
    logs({
      address: d.address,
      topics: [[topic('Datanets', 'ContributionSubmitted'), topic('Datanets', 'ContributionAccepted'), topic('Datanets', 'ContributionRejected')],
        uintTopic(c.datanetId), uintTopic(c.id)],
    }, c.blockNumber, last),
    c.blobAvailable ? batch([['ai_getBlob', [c.contentHash, 0, PREVIEW]]]).then(([r]) => r.result ?? null) : null,
  ]);
  const history = [...curated, ...fate].sort((a, b) => num(a.blockNumber) - num(b.blockNumber) || num(a.logIndex) - num(b.logIndex));
  return { c, datanet, history, content };
}

export function ContributionPage({ arg }) {
  const state = useLoad(() => loadContribution(arg), arg);
  return <Loaded state={state} what={`contribution ${arg}`}>{(data) => <ContributionView {...data} />}</Loaded>;
}

function ContributionView({ c, datanet, history, content }) {
  return (
    <>
      <h1>Contribution {c.id}</h1>
      <Section>
        <Fields rows={[
          ['datanet', <Link to={`datanet/${c.datanetId}`}>datanet {c.datanetId}: {datanet.name}</Link>],
          ['contributor', <AddressLink address={c.contributor} full />],
          ['license', <span data-license>{c.license}</span>],
          ['status', <span class={`status c${c.status}`}>{CONTRIBUTION_STATUS[c.status]}</span>],
          ['curation', `${c.approvals} approval${c.approvals === 1 ? '' : 's'}, ${c.rejections} rejection${c.rejections === 1 ? '' : 's'} (quorum ${datanet.quorum})${c.reasonCode ? `, reason code ${c.reasonCode}` : ''}`],
          c.status === 1 && ['accepted as leaf', c.acceptedIndex],
          ['submitted', <span><BlockLink number={c.blockNumber} /> · {when(c.timestamp)}</span>],
          ['size', `${c.size.toLocaleString('en-US')} bytes`],
          ['content hash', <Hash value={c.contentHash} />],
          ['metadata hash', <Hash value={c.metadataHash} />],
        ]} />
      </Section>
      <Section title="Content">
        {content ? (
          <pre class="content" data-content>{utf8(content.data)}{num(content.size) > PREVIEW ? '\n…' : ''}</pre>
        ) : <p class="muted">This node does not hold the content (blob {c.contentHash.slice(0, 10)}…).</p>}
      </Section>
      <Section title="Curation history" id="curation">
        {history.length === 0 ? <p class="muted">No event found.</p> : (
          <table class="list">
            <thead><tr><th>block</th><th>event</th><th>by</th><th>detail</th><th>transaction</th></tr></thead>
            <tbody>
              {history.map((log) => {
                const e = decodeLog(log);
                const a = e?.args ?? {};
                return (
                  <tr key={`${log.transactionHash}:${num(log.logIndex)}`} data-event={e?.name}>
                    <td><BlockLink number={num(log.blockNumber)} /></td>
                    <td>{e?.name.replace('Contribution', '')}</td>
                    <td>{a.curator ? <AddressLink address={a.curator} /> : a.contributor ? <AddressLink address={a.contributor} /> : <span class="muted">–</span>}</td>
                    <td>{e?.name === 'ContributionCurated' ? (a.approve ? 'approve' : `reject (reason ${a.reasonCode})`)
                      : e?.name === 'ContributionAccepted' ? `leaf ${a.acceptedIndex}`
                        : e?.name === 'ContributionRejected' ? `reason ${a.reasonCode}` : `${a.size} bytes`}</td>
                    <td><TxLink hash={log.transactionHash} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Section>
      <ProofSection c={c} datanet={datanet} />
    </>
  );
}

async function loadProof(c, datanet) {
  const asked = Number(new URLSearchParams(window.location.search).get('version'));
  const version = asked > 0 ? asked : datanet.versionCount;
  if (c.status !== 1) return { reason: 'Only accepted contributions are leaves of a version.' };
  if (version < 1) return { reason: 'No version of this datanet is published yet.' };
  const record = await readView('Datanets', 'getVersion', [BigInt(c.datanetId), BigInt(version)]);
  if (BigInt(c.acceptedIndex) >= record.count) return { reason: `Version ${version} covers the first ${record.count} accepted contributions; this one was accepted later.` };
  const proof = await call('ai_getContributionProof', [c.datanetId, version, c.id]);
  const leaf = leafHash(c);
  const { steps, valid } = verifyProof(leaf, proof.proof, record.root);
  return { version, root: record.root, proof, leaf, steps, valid };
}

function ProofSection({ c, datanet }) {
  const state = useLoad(() => loadProof(c, datanet), `${c.id}:${window.location.search}`);
  return (
    <Section title="Merkle proof, checked in this page" id="proof">
      <Loaded state={state} what="the proof" secondary>{(p) => p.reason ? <p class="muted">{p.reason}</p> : (
        <div data-proof={p.valid ? 'valid' : 'invalid'} data-leaf={p.leaf} data-version={p.version}>
          <p class={p.valid ? 'verdict good' : 'verdict bad'}>
            {p.valid
              ? `✓ This contribution is leaf ${p.proof.index} of datanet ${c.datanetId} version ${p.version}: the proof folds to the version's root.`
              : `✗ The proof does not fold to version ${p.version}'s root.`}
          </p>
          <Fields rows={[
            ['leaf (hashed here)', <Hash value={p.leaf} />],
            ['leaf (node says)', <span><Hash value={p.proof.leaf} /> {p.proof.leaf.toLowerCase() === p.leaf.toLowerCase() ? '✓' : '✗ differs'}</span>],
            ...p.proof.proof.map((sibling, i) => [`sibling ${i + 1}`, <span><Hash value={sibling} /><br /><span class="muted">→ </span><Hash value={p.steps[i]} /></span>]),
            [`root of v${p.version} (on chain)`, <Hash value={p.root} />],
          ]} />
          <p class="muted">leaf = keccak256(0x00 ‖ abi.encode(datanetId, contributionId, contributor, contentHash, size, metadataHash)); node = keccak256(0x01 ‖ min(a, b) ‖ max(a, b)).</p>
        </div>
      )}</Loaded>
    </Section>
  );
}
