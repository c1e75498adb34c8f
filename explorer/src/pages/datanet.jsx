// A datanet: its terms, curators, published versions (each a Merkle root over the accepted
// contributions it covers) and its contributions, a page at a time.

import { useState } from 'preact/hooks';
import { call } from '../rpc.js';
import { readViews } from '../chain.js';
import { AddressLink, BlockLink, Fields, Hash, Link, Loaded, Section, useHead, useLoad } from '../ui.jsx';
import { short } from '../format.js';

const PAGE = 50;
/** Versions shown, newest first. */
const VERSIONS = 50;
export const CONTRIBUTION_STATUS = ['pending', 'accepted', 'rejected'];

async function loadDatanet(id) {
  if (!/^\d+$/.test(id)) throw new Error(`"${id}" is not a datanet id`);
  const datanet = await call('ai_getDatanet', [Number(id)]);
  const numbers = [];
  for (let v = datanet.versionCount; v >= 1 && numbers.length < VERSIONS; v--) numbers.push(v);
  const versions = await readViews(numbers.map((v) => ['Datanets', 'getVersion', [BigInt(id), BigInt(v)]]));
  return { datanet, versions: versions.filter((r) => !r.error).map((r) => r.result) };
}

export function DatanetPage({ arg }) {
  const head = useHead();
  const state = useLoad(() => loadDatanet(arg), arg, head);
  return <Loaded state={state} what={`datanet ${arg}`}>{(data) => <DatanetView {...data} />}</Loaded>;
}

function DatanetView({ datanet, versions }) {
  const wanted = new URLSearchParams(window.location.search).get('version');
  return (
    <>
      <h1>Datanet {datanet.id}: {datanet.name}</h1>
      <Section>
        <Fields rows={[
          ['owner', <AddressLink address={datanet.owner} full />],
          ['domain', datanet.domain],
          datanet.descriptionUri && ['description', datanet.descriptionUri],
          ['license policy', datanet.licensePolicy],
          ['curators', <span>{datanet.curators.map((c, i) => <span key={c}>{i ? ', ' : ''}<AddressLink address={c} /></span>)}</span>],
          ['quorum', `${datanet.quorum} approval${datanet.quorum === 1 ? '' : 's'}`],
          ['largest contribution', `${Number(datanet.maxContributionSize).toLocaleString('en-US')} bytes`],
          ['contributions', `${datanet.contributionCount} submitted, ${datanet.acceptedCount} accepted`],
          ['created', <BlockLink number={datanet.createdBlock} />],
        ]} />
      </Section>
      <Section title={`Versions (${datanet.versionCount})`} id="versions">
        {versions.length === 0 ? <p class="muted">No version published yet.</p> : (
          <table class="list">
            <thead><tr><th>version</th><th>contributions</th><th>Merkle root</th><th>published</th></tr></thead>
            <tbody>
              {versions.map((v) => (
                <tr key={String(v.version)} class={wanted === String(v.version) ? 'selected' : ''} data-version={String(v.version)}>
                  <td>v{String(v.version)}</td>
                  <td>first {String(v.count)} accepted</td>
                  <td><Hash value={v.root} /></td>
                  <td><BlockLink number={v.blockNumber} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Contributions datanet={datanet} />
    </>
  );
}

function Contributions({ datanet }) {
  const [offset, setOffset] = useState(0);
  const state = useLoad(() => call('ai_listContributions', [datanet.id, { offset, limit: PAGE }]), `${datanet.id}:${offset}`);
  const total = datanet.contributionCount;
  return (
    <Section title={`Contributions (${total})`} id="contributions">
      <Loaded state={state} what="contributions" secondary>{(items) => (
        <>
          <table class="list">
            <thead><tr><th>contribution</th><th>contributor</th><th>size</th><th>license</th><th>status</th><th>content</th></tr></thead>
            <tbody>
              {items.map((c) => (
                <tr key={c.id} data-contribution={c.id}>
                  <td><Link to={`contribution/${c.id}`}>contribution {c.id}</Link></td>
                  <td><AddressLink address={c.contributor} /></td>
                  <td>{c.size.toLocaleString('en-US')} B</td>
                  <td>{c.license}</td>
                  <td><span class={`status c${c.status}`}>{CONTRIBUTION_STATUS[c.status]}</span></td>
                  <td class="mono" title={c.contentHash}>{short(c.contentHash)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {total > PAGE && (
            <nav class="pager">
              <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>← previous</button>
              <span class="muted">{offset + 1}–{Math.min(total, offset + PAGE)} of {total}</span>
              <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>next →</button>
            </nav>
          )}
        </>
      )}</Loaded>
    </Section>
  );
}
