// A base model or adapter: its record, its lineage drawn as a graph (ai_getLineage: the path
// back to its base model, the datanet versions each step trained on, their contributions and
// contributors), and the adapters built on it.

import { batchAll } from '../rpc.js';
import { AddressLink, BlockLink, Fields, Hash, Link, Loaded, Section, useLoad } from '../ui.jsx';
import { LineageGraph } from '../graph.jsx';

/** Children listed (a base model may have many adapters; the rest are counted). */
const CHILDREN = 100;

async function loadModel(id) {
  if (!/^\d+$/.test(id)) throw new Error(`"${id}" is not a model id`);
  const [model, lineage] = await batchAll([['ai_getModel', [Number(id)]], ['ai_getLineage', [Number(id)]]]);
  return { model, lineage };
}

export function ModelPage({ arg }) {
  const state = useLoad(() => loadModel(arg), arg);
  return <Loaded state={state} what={`model ${arg}`}>{(data) => <ModelView {...data} />}</Loaded>;
}

const ZERO = `0x${'0'.repeat(64)}`;

function ModelView({ model, lineage }) {
  const adapter = model.kind === 2;
  const step = lineage.path[0] ?? {};
  const hash = (label, value) => value && value !== ZERO && [label, <Hash value={value} />];
  const merge = step.merge;
  return (
    <>
      <h1>{adapter ? 'Adapter' : 'Base model'} {model.id}</h1>
      <Section>
        <Fields rows={[
          ['author', <AddressLink address={model.author} full />],
          adapter && !merge && ['parent', <Link to={`model/${model.parentId}`}>model {model.parentId}</Link>],
          merge && ['merged from', <span data-merge={merge.methodName}>{merge.methodName}: {merge.parents.map((p, i) => <span key={p.id}>{i ? ', ' : ''}<Link to={`model/${p.id}`}>adapter {p.id}</Link> ({(p.weightBp / 100).toFixed(2)}%)</span>)}</span>],
          adapter && ['base model', <Link to={`model/${model.baseModelId}`}>model {model.baseModelId}</Link>],
          adapter && ['depth', model.depth],
          adapter && ['trained by validator', <AddressLink address={model.validator} full />],
          adapter && ['trained on', <span>{model.datanetIds.map((d, i) => <span key={d}>{i ? ', ' : ''}<Link to={`datanet/${d}?version=${model.datanetVersions[i]}`}>datanet {d} v{model.datanetVersions[i]}</Link></span>)}</span>],
          adapter && ['contribution root', <span><Hash value={model.contributionRoot} /> {step.contributionRootMatches ? <span class="status good" data-root-matches="true">matches the declared versions</span> : <span class="status bad" data-root-matches="false">does not match the declared versions</span>}</span>],
          ['license', model.license],
          ['retired', model.retired ? 'yes (takes no new receipts)' : 'no'],
          ['registered', <BlockLink number={model.createdBlock} />],
          hash('weights hash', model.weightsHash),
          hash('config hash', model.configHash),
          hash('tokenizer hash', model.tokenizerHash),
          hash('hyper-parameters hash', model.hyperParamsHash),
          hash('attribution index hash', model.attributionIndexHash),
          hash('training manifest hash', model.manifestHash),
        ]} />
      </Section>
      <Section title="Lineage" id="lineage">
        <p class="muted">
          From the contributors (left) through their contributions and the datanet versions they are in, to each
          model on the path back to base model {model.baseModelId}; authors credited: {lineage.authors.map((a, i) => <span key={a}>{i ? ', ' : ''}<AddressLink address={a} /></span>)}.
        </p>
        <LineageGraph lineage={lineage} />
      </Section>
      <Section title={`Adapters built on it (${model.children.length})`}>
        {model.children.length === 0 ? <p class="muted">None.</p> : (
          <p>
            {model.children.slice(0, CHILDREN).map((c, i) => <span key={c}>{i ? ', ' : ''}<Link to={`model/${c}`}>adapter {c}</Link></span>)}
            {model.children.length > CHILDREN && <span class="muted"> and {model.children.length - CHILDREN} more</span>}
          </p>
        )}
      </Section>
    </>
  );
}
