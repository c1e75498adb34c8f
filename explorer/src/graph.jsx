// The lineage graph on the page (SVG, laid out by dagre; see lineage.js for what it holds) and
// the attribution bar chart.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { layoutGraph, lineageGraph } from './lineage.js';
import { navigate, BASE } from './ui.jsx';
import { checksum, percentBp, short } from './format.js';

function targetOf(node) {
  switch (node.kind) {
    case 'model': return `model/${node.ref}`;
    case 'version': return `datanet/${node.ref[0]}?version=${node.ref[1]}`;
    case 'contribution': return `contribution/${node.ref}`;
    default: return `address/${checksum(node.ref)}`;
  }
}

function pathOf(points) {
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

/**
 * The lineage of `lineage` (an ai_getLineage answer) drawn as a graph. Layout runs after the
 * page around it has rendered (a thousand contributions take a while); the SVG says how long the
 * layout took (data-layout-ms) and when it was in the page (data-rendered-ms). Wheel zooms, drag pans, a click on a node opens its page.
 * `highlight` is a set of node ids to mark (a receipt's attributed contributions).
 */
export function LineageGraph({ lineage, highlight }) {
  const graph = useMemo(() => lineageGraph(lineage), [lineage]);
  const [laid, setLaid] = useState(null);
  const [view, setView] = useState(null);
  const svgRef = useRef(null);
  const drag = useRef(null);
  useEffect(() => {
    setLaid(null);
    // Let the page paint first: the layout of a large lineage is the slow part.
    const timer = setTimeout(() => {
      const started = performance.now();
      const result = layoutGraph(graph);
      result.ms = performance.now() - started;
      setLaid(result);
      setView(initialView(result));
    }, 0);
    return () => clearTimeout(timer);
  }, [graph]);
  // When the drawn graph is in the DOM (the page's clock since navigation): what bench/ reads.
  useEffect(() => {
    if (laid && svgRef.current) svgRef.current.dataset.renderedMs = performance.now().toFixed(1);
  }, [laid]);

  if (!laid || !view) {
    return <div class="graph-wrap"><div class="loading">Laying out {graph.nodes.length} nodes…</div></div>;
  }
  const onWheel = (e) => {
    e.preventDefault();
    const rect = svgRef.current.getBoundingClientRect();
    const fx = (e.clientX - rect.left) / rect.width;
    const fy = (e.clientY - rect.top) / rect.height;
    const scale = e.deltaY > 0 ? 1.2 : 1 / 1.2;
    const w = Math.min(Math.max(view.w * scale, 80), laid.width * 4);
    const h = (view.h / view.w) * w;
    setView({ x: view.x + (view.w - w) * fx, y: view.y + (view.h - h) * fy, w, h });
  };
  const onPointerDown = (e) => {
    drag.current = { x: e.clientX, y: e.clientY, view, moved: false };
  };
  const onPointerMove = (e) => {
    const d = drag.current;
    if (!d) return;
    const rect = svgRef.current.getBoundingClientRect();
    const dx = ((e.clientX - d.x) / rect.width) * d.view.w;
    const dy = ((e.clientY - d.y) / rect.height) * d.view.h;
    if (Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) > 3) d.moved = true;
    setView({ ...d.view, x: d.view.x - dx, y: d.view.y - dy });
  };
  const onPointerUp = () => {
    setTimeout(() => { drag.current = null; }, 0);
  };
  const open = (node) => (e) => {
    if (drag.current?.moved) return;
    e.preventDefault();
    navigate(`${BASE}/${targetOf(node)}`);
  };
  return (
    <div class="graph-wrap">
      <div class="graph-legend">
        <span class="key model">model</span>
        <span class="key version">datanet version</span>
        <span class="key contribution">contribution</span>
        <span class="key contributor">contributor</span>
        <span class="muted">{graph.nodes.length} nodes, {graph.edges.length} edges · wheel to zoom, drag to pan</span>
        <button type="button" onClick={() => setView({ x: 0, y: 0, w: laid.width, h: laid.height })}>whole graph</button>
      </div>
      <svg
        ref={svgRef}
        class="lineage"
        viewBox={`${view.x} ${view.y} ${view.w} ${view.h}`}
        preserveAspectRatio="xMidYMid meet"
        style={{ height: `${Math.round(Math.max(140, Math.min(MAX_HEIGHT, (view.h * PLANNED_WIDTH) / view.w)))}px` }}
        data-nodes={graph.nodes.length}
        data-edges={graph.edges.length}
        data-layout-ms={laid.ms.toFixed(1)}
        onWheel={onWheel}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerLeave={onPointerUp}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        <g class="edges">
          {laid.edges.map((e) => (
            <path key={e.id} class="lg-edge" data-edge={e.id} d={pathOf(e.points)} marker-end="url(#arrow)" />
          ))}
        </g>
        <g class="nodes">
          {laid.nodes.map((n) => (
            <g
              key={n.id}
              class={`lg-node ${n.kind}${highlight?.has(n.id) ? ' hot' : ''}`}
              data-node={n.id}
              transform={`translate(${(n.x - n.width / 2).toFixed(1)},${(n.y - n.height / 2).toFixed(1)})`}
              onClick={open(n)}
            >
              <title>{n.kind === 'contributor' ? checksum(n.ref) : n.label}</title>
              <rect width={n.width} height={n.height} rx="5" />
              <text x={n.width / 2} y={n.height / 2 + 4} text-anchor="middle">{n.label}</text>
            </g>
          ))}
        </g>
      </svg>
    </div>
  );
}

/** Pixels the graph is drawn at, at most, and the width it is planned for. */
const MAX_HEIGHT = 520;
const PLANNED_WIDTH = 1200;

/**
 * The first view: the whole width at a readable scale (never wider than a page of 1000 units, so
 * a small graph is not blown up), as tall as fits MAX_HEIGHT, centred on the asked model.
 */
function initialView(laid) {
  const w = Math.max(laid.width, 1000);
  const h = Math.min(laid.height, (MAX_HEIGHT * w) / PLANNED_WIDTH);
  const model = laid.nodes.find((n) => n.kind === 'model');
  const y = Math.min(Math.max(0, (model ? model.y : 0) - h / 2), Math.max(0, laid.height - h));
  return { x: (laid.width - w) / 2, y, w, h };
}

/**
 * The attribution of a receipt as horizontal bars, one per attributed contribution, in the
 * receipt's order; each bar's length is its weight (basis points of 10,000), written on it and
 * in data-weight-bp.
 */
export function AttributionBars({ attributions }) {
  if (!attributions.length) return <p class="muted">This receipt credits no contribution.</p>;
  return (
    <div class="bars" role="list">
      {attributions.map((a) => (
        <div class="bar-row" role="listitem" key={a.contributionId} data-contribution={a.contributionId} data-weight-bp={a.weightBp}>
          <a class="bar-label" href={`${BASE}/contribution/${a.contributionId}`} onClick={(e) => { e.preventDefault(); navigate(`${BASE}/contribution/${a.contributionId}`); }}>
            contribution {a.contributionId}
          </a>
          <div class="bar-track">
            <div class="bar" style={{ width: `${(Number(a.weightBp) / 100).toFixed(2)}%` }} />
          </div>
          <span class="bar-value">{percentBp(a.weightBp)}</span>
          <span class="bar-who muted mono" title={a.contributor ?? ''}>{a.contributor ? `${short(checksum(a.contributor), 8, 6)} · datanet ${a.datanetId}` : ''}</span>
        </div>
      ))}
    </div>
  );
}
