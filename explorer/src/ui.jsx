// What every page shares: links that stay in the app, loading and error states, the live head,
// and the "ready" mark tests and benchmarks wait for.

import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { addressName } from './chain.js';
import { checksum, ether, short, weiText } from './format.js';

export const BASE = '/explorer';

/** The newest block number seen (eth_subscribe newHeads), shared by every page. */
export const HeadContext = createContext(0);

export function useHead() {
  return useContext(HeadContext);
}

/** Go to an app URL without reloading the page. */
export function navigate(url) {
  if (url === window.location.pathname + window.location.search) return;
  window.history.pushState({}, '', url);
  window.dispatchEvent(new Event('explorer:navigate'));
  window.scrollTo(0, 0);
}

export function Link({ to, children, title, class: className }) {
  const href = `${BASE}/${to}`;
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={onClick} title={title} class={className}>{children}</a>;
}

export function BlockLink({ number }) {
  const n = Number(number);
  return <Link to={`block/${n}`}>{n.toLocaleString('en-US')}</Link>;
}

export function TxLink({ hash, full }) {
  return <Link to={`tx/${hash}`} title={hash} class="mono">{full ? hash : short(hash)}</Link>;
}

export function AddressLink({ address, full }) {
  if (!address) return <span class="muted">none</span>;
  const name = addressName(address);
  const shown = checksum(address);
  return (
    <Link to={`address/${shown}`} title={shown} class="mono">
      {name ? `${name} (${short(shown, 6, 4)})` : full ? shown : short(shown, 8, 6)}
    </Link>
  );
}

export function Hash({ value }) {
  return <span class="mono hash" title={value}>{value}</span>;
}

/** An amount in ether with its exact wei as the tooltip (and the text when `exact`). */
export function Amount({ wei, exact }) {
  if (wei === null || wei === undefined) return <span class="muted">–</span>;
  return exact
    ? <span class="amount"><span>{ether(wei)}</span> <span class="muted wei">({weiText(wei)})</span></span>
    : <span class="amount" title={weiText(wei)}>{ether(wei)}</span>;
}

/** Rows of label and value. */
export function Fields({ rows }) {
  return (
    <table class="fields">
      <tbody>
        {rows.filter(Boolean).map(([label, value]) => (
          <tr key={label}><th>{label}</th><td>{value}</td></tr>
        ))}
      </tbody>
    </table>
  );
}

export function Section({ title, children, id }) {
  return (
    <section class="card" id={id}>
      {title && <h2>{title}</h2>}
      {children}
    </section>
  );
}

export function ErrorBox({ error }) {
  const text = error?.message ?? String(error);
  return <div class="error" role="alert" data-error={text}>{text}</div>;
}

export function Loading({ what }) {
  return <div class="loading">Loading {what}…</div>;
}

/**
 * Load a page's data: `load()` runs again when `key` changes (another record: the old one
 * disappears) and quietly when `refresh` changes (a new head: the page keeps showing the old
 * answer until the new one arrives). Returns {data, error}.
 */
export function useLoad(load, key, refresh) {
  const [state, setState] = useState({});
  const keyRef = useRef(null);
  useEffect(() => {
    let live = true;
    const fresh = keyRef.current !== key;
    keyRef.current = key;
    if (fresh) setState({});
    load().then(
      (data) => live && setState({ data }),
      (error) => live && setState((old) => (fresh || !old.data ? { error } : old)),
    );
    return () => { live = false; };
  }, [key, refresh]);
  return state;
}

/**
 * Marks the page ready once it has rendered its data: `<html data-ready="/explorer/...">`, and
 * the time since navigation start in `window.__explorerReady` (what tests and bench/ wait for).
 */
export function Ready() {
  useEffect(() => {
    const path = window.location.pathname;
    document.documentElement.dataset.ready = path;
    (window.__explorerReady ??= []).push({ path, ms: performance.now() });
  }, []);
  return null;
}

/**
 * Render `state` ({data, error}) with `children(data)`, a loading line, or the error; the
 * page's main data marks the page ready (a secondary section passes `secondary`).
 */
export function Loaded({ state, what, children, secondary }) {
  const mark = secondary ? null : <Ready />;
  if (state.error) return <><ErrorBox error={state.error} />{mark}</>;
  if (state.data === undefined) return <Loading what={what} />;
  return <>{children(state.data)}{mark}</>;
}
