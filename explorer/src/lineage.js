// A model's lineage as a graph, from ai_getLineage's answer alone, and its layout by dagre.
//
// Nodes (ids as the page writes them in data-node):
//   model:ID                 every model on the path, the asked one first, back to its base
//   version:DATANET:VERSION  every datanet version a model on the path trained on
//   contribution:ID          every contribution those versions cover
//   contributor:ADDRESS      every contributor of those contributions (lower-case address)
// Edges "A->B" read "A is derived from B" (data-edge):
//   model:ID->model:PARENT, model:ID->version:D:V, version:D:V->contribution:C,
//   contribution:C->contributor:ADDRESS
// A merge (a step with `merge`) stands on every one of its parents: model:MERGE->model:P for
// each, and each parent's own path back to its base, model:X->model:NEXT (its data shows in
// the merge's own versions, flattened from its parents').
// Arrows are drawn the way value flows, from B to A: contributors on the left, the asked model
// on the right.

import dagre from '@dagrejs/dagre';

const SIZES = {
  model: [150, 34],
  version: [130, 30],
  contribution: [118, 24],
  contributor: [128, 24],
};

function shortAddress(a) {
  return `${a.slice(0, 6)}…${a.slice(-4)}`;
}

/** {nodes: [{id, kind, label, ref}], edges: [{from, to}]} of a lineage answer, without repeats. */
export function lineageGraph(lineage) {
  const nodes = new Map();
  const edges = new Map();
  // A node's key orders it within its rank: its first appearance, models after the data in
  // their rank (a parent model beside the versions its child trained on goes below them).
  const addNode = (id, kind, label, ref) => {
    if (!nodes.has(id)) nodes.set(id, { id, kind, label, ref, key: (kind === 'model' ? 1e9 : 0) + nodes.size });
    return id;
  };
  const addEdge = (from, to) => {
    const id = `${from}->${to}`;
    if (!edges.has(id)) edges.set(id, { id, from, to });
  };
  const contributors = lineage.contributors ?? {};
  const seenContributor = new Map();
  for (const step of lineage.path ?? []) {
    addNode(`model:${step.id}`, 'model', `${step.kind === 1 ? 'base model' : 'adapter'} ${step.id}`, step.id);
  }
  for (const step of lineage.path ?? []) {
    const model = `model:${step.id}`;
    if (step.parentId) addEdge(model, addNode(`model:${step.parentId}`, 'model', `model ${step.parentId}`, step.parentId));
    for (const detail of step.datanetVersionsDetail ?? []) {
      const version = addNode(`version:${detail.datanetId}:${detail.version}`, 'version',
        `datanet ${detail.datanetId} v${detail.version}`, [detail.datanetId, detail.version]);
      addEdge(model, version);
      // Contributions grouped by contributor (in order of first appearance) keep the edges
      // to contributors from crossing.
      const ids = [...(detail.contributionIds ?? [])];
      for (const cid of ids) {
        const who = contributors[String(cid)];
        if (who && !seenContributor.has(who.toLowerCase())) seenContributor.set(who.toLowerCase(), seenContributor.size);
      }
      ids.sort((a, b) => {
        const wa = seenContributor.get((contributors[String(a)] ?? '').toLowerCase()) ?? -1;
        const wb = seenContributor.get((contributors[String(b)] ?? '').toLowerCase()) ?? -1;
        return wa - wb || a - b;
      });
      for (const cid of ids) {
        const contribution = addNode(`contribution:${cid}`, 'contribution', `contribution ${cid}`, cid);
        addEdge(version, contribution);
        const who = contributors[String(cid)];
        if (who) {
          const lower = who.toLowerCase();
          addEdge(contribution, addNode(`contributor:${lower}`, 'contributor', shortAddress(who), who));
        }
      }
    }
  }
  for (const step of lineage.path ?? []) {
    for (const parent of step.merge?.parents ?? []) {
      const ids = parent.path?.length ? parent.path : [parent.id];
      addEdge(`model:${step.id}`, addNode(`model:${ids[0]}`, 'model', `adapter ${ids[0]}`, ids[0]));
      for (let i = 1; i < ids.length; i += 1) {
        addEdge(`model:${ids[i - 1]}`, addNode(`model:${ids[i]}`, 'model', `model ${ids[i]}`, ids[i]));
      }
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

/**
 * Positions for `graph` (dagre: ranks, coordinates, edge routes). The order of nodes within a
 * rank is given (dagre's customOrder hook): each node's place of first appearance in the
 * lineage, which is already the crossing-free order for a tree of versions, contributions and
 * their contributors, and skips dagre's crossing minimisation, the part whose cost grows worst
 * with a thousand contributions in one rank. Returns {width, height, nodes, edges} with
 * x, y (centres), width, height for nodes and points for edges.
 */
export function layoutGraph(graph) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 8, ranksep: 70, edgesep: 4, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const keys = new Map();
  for (const node of graph.nodes) {
    const [width, height] = SIZES[node.kind];
    g.setNode(node.id, { width, height });
    keys.set(node.id, node.key);
  }
  // Laid out as value flows: from the source (B) to what derives from it (A).
  for (const edge of graph.edges) g.setEdge(edge.to, edge.from);
  const keyOf = (lg, v) => {
    if (keys.has(v)) return keys.get(v);
    const label = lg.node(v);
    const e = label && label.edgeObj; // a dummy node on a long edge: between its two ends
    return e ? ((keys.get(e.v) ?? 0) + (keys.get(e.w) ?? 0)) / 2 : 0;
  };
  dagre.layout(g, {
    customOrder: (lg) => {
      const ranks = new Map();
      for (const v of lg.nodes()) {
        const label = lg.node(v);
        const rank = label.rank ?? 0;
        if (!ranks.has(rank)) ranks.set(rank, []);
        ranks.get(rank).push(v);
      }
      for (const members of ranks.values()) {
        members.sort((a, b) => keyOf(lg, a) - keyOf(lg, b));
        members.forEach((v, i) => { lg.node(v).order = i; });
      }
    },
  });
  const nodes = graph.nodes.map((n) => ({ ...n, ...pick(g.node(n.id)) }));
  const edges = graph.edges.map((e) => ({ ...e, points: g.edge(e.to, e.from).points }));
  const { width, height } = g.graph();
  return { width, height, nodes, edges };
}

function pick(label) {
  return { x: label.x, y: label.y, width: label.width, height: label.height };
}
