// The explorer's one way to the chain: the node's public JSON-RPC on the page's own origin,
// HTTP POST for calls and batches, one WebSocket for eth_subscribe. Nothing else is fetched.

const ENDPOINT = new URL('/', window.location.origin).href;
const WS_ENDPOINT = ENDPOINT.replace(/^http/, 'ws');
/** The node answers at most 1,000 calls a batch (geth's limit). */
const MAX_BATCH = 1000;

/** A JSON-RPC error answer: its code, message and data, as the node gave them. */
export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }
}

/**
 * JSON.parse that keeps integers exact: the `ai_` reads answer some amounts (fees, stakes in
 * wei) as plain JSON numbers, which lose digits past 2^53 as floats. Such a number becomes a
 * BigInt read from its own source text.
 */
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

let nextId = 1;

async function post(body) {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await response.text();
  if (!response.ok) throw new RpcError(-32000, `HTTP ${response.status}: ${text.trim()}`);
  return parseJson(text);
}

/** One call; its result, or an RpcError. */
export async function call(method, params = []) {
  const reply = await post({ jsonrpc: '2.0', id: nextId++, method, params });
  if (reply.error) throw new RpcError(reply.error.code, reply.error.message, reply.error.data);
  return reply.result;
}

/**
 * Many calls in batches of at most MAX_BATCH; one entry per call, in order: `{result}` or
 * `{error}` (an RpcError), so one missing record does not hide the others.
 */
export async function batch(calls) {
  const out = [];
  for (let start = 0; start < calls.length; start += MAX_BATCH) {
    const chunk = calls.slice(start, start + MAX_BATCH);
    const first = nextId;
    nextId += chunk.length;
    const replies = await post(chunk.map(([method, params], i) => ({ jsonrpc: '2.0', id: first + i, method, params: params ?? [] })));
    const list = Array.isArray(replies) ? replies : [replies];
    const byId = new Map(list.map((r) => [r.id, r]));
    chunk.forEach((_, i) => {
      const r = byId.get(first + i);
      if (!r) out.push({ error: new RpcError(-32603, 'no answer in the batch') });
      else if (r.error) out.push({ error: new RpcError(r.error.code, r.error.message, r.error.data) });
      else out.push({ result: r.result });
    });
  }
  return out;
}

/** Like batch, but any error rejects: for reads that must all succeed. */
export async function batchAll(calls) {
  const replies = await batch(calls);
  return replies.map((r) => {
    if (r.error) throw r.error;
    return r.result;
  });
}

// -- live updates: one WebSocket, shared by every listener ----------------------------------

const headListeners = new Set();
let socket = null;
let retryMs = 1000;

function openSocket() {
  if (socket || headListeners.size === 0) return;
  const ws = new WebSocket(WS_ENDPOINT);
  socket = ws;
  ws.onopen = () => {
    retryMs = 1000;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'eth_subscribe', params: ['newHeads'] }));
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = parseJson(event.data);
    } catch {
      return;
    }
    if (message.method === 'eth_subscription' && message.params && message.params.result) {
      const header = message.params.result;
      for (const listener of headListeners) listener(header);
    }
  };
  ws.onclose = () => {
    socket = null;
    if (headListeners.size > 0) {
      // The node restarted or dropped a slow reader: come back, more slowly each time.
      setTimeout(openSocket, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    }
  };
}

/** Call `listener(header)` for every new block (eth_subscribe newHeads); returns the unsubscribe. */
export function onNewHead(listener) {
  headListeners.add(listener);
  openSocket();
  return () => {
    headListeners.delete(listener);
    if (headListeners.size === 0 && socket) {
      const ws = socket;
      socket = null;
      ws.onclose = null;
      ws.close();
    }
  };
}
