// The explorer app: a header with search and the live head, and one page per URL under
// /explorer/ (the node serves index.html for each; this routes it in the browser).

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, onNewHead } from './rpc.js';
import { num } from './chain.js';
import { BASE, HeadContext, Link, navigate } from './ui.jsx';
import { Home } from './pages/home.jsx';
import { BlockPage } from './pages/block.jsx';
import { TxPage } from './pages/tx.jsx';
import { AddressPage } from './pages/address.jsx';
import { DatanetPage } from './pages/datanet.jsx';
import { ContributionPage } from './pages/contribution.jsx';
import { ModelPage } from './pages/model.jsx';
import { ReceiptPage } from './pages/receipt.jsx';
import { ValidatorsPage } from './pages/validators.jsx';
import { GovernancePage } from './pages/governance.jsx';
import './style.css';

/** Pages by the first segment after /explorer/; each takes the second as `arg`. */
const PAGES = {
  '': Home,
  block: BlockPage,
  tx: TxPage,
  address: AddressPage,
  datanet: DatanetPage,
  contribution: ContributionPage,
  model: ModelPage,
  receipt: ReceiptPage,
  validators: ValidatorsPage,
  governance: GovernancePage,
};

function route() {
  const rest = window.location.pathname.slice(BASE.length).replace(/^\/+|\/+$/g, '');
  const [page = '', arg = ''] = rest.split('/');
  return { page, arg: decodeURIComponent(arg), path: window.location.pathname + window.location.search };
}

/** Where a search goes: a block number, a transaction hash, an address, or `receipt N`-style names. */
export function searchTarget(text) {
  const q = text.trim();
  if (/^\d+$/.test(q)) return `block/${q}`;
  if (/^0x[0-9a-fA-F]{64}$/.test(q)) return `tx/${q}`;
  if (/^0x[0-9a-fA-F]{40}$/.test(q)) return `address/${q}`;
  const named = /^(block|receipt|model|adapter|datanet|contribution)\s*#?\s*(\d+)$/i.exec(q);
  if (named) return `${named[1].toLowerCase() === 'adapter' ? 'model' : named[1].toLowerCase()}/${named[2]}`;
  return null;
}

function Search() {
  const [text, setText] = useState('');
  const [bad, setBad] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    const target = searchTarget(text);
    setBad(!target);
    if (target) {
      setText('');
      navigate(`${BASE}/${target}`);
    }
  };
  return (
    <form class="search" onSubmit={submit} role="search">
      <input
        type="search"
        name="q"
        value={text}
        class={bad ? 'bad' : ''}
        placeholder="block, tx hash, address, receipt 3, model 2…"
        aria-label="search"
        onInput={(e) => { setText(e.currentTarget.value); setBad(false); }}
      />
    </form>
  );
}

function App() {
  const [where, setWhere] = useState(route);
  const [head, setHead] = useState(0);
  useEffect(() => {
    const onMove = () => {
      delete document.documentElement.dataset.ready;
      setWhere(route());
    };
    window.addEventListener('popstate', onMove);
    window.addEventListener('explorer:navigate', onMove);
    call('eth_blockNumber').then((n) => setHead((h) => Math.max(h, num(n))), () => {});
    const stop = onNewHead((header) => setHead((h) => Math.max(h, num(header.number))));
    return () => {
      window.removeEventListener('popstate', onMove);
      window.removeEventListener('explorer:navigate', onMove);
      stop();
    };
  }, []);
  const Page = PAGES[where.page];
  return (
    <HeadContext.Provider value={head}>
      <header class="top">
        <Link to="" class="brand">ailedger explorer</Link>
        <nav>
          <Link to="validators">validators</Link>
          <Link to="governance">governance</Link>
        </nav>
        <Search />
        <span class="live" title="the newest block, live over eth_subscribe" data-live-head={head}>
          {head ? <>● block <Link to={`block/${head}`}>{head.toLocaleString('en-US')}</Link></> : '○ connecting'}
        </span>
      </header>
      <main>
        {Page ? <Page key={where.path} arg={where.arg} /> : <NotFound page={where.page} />}
      </main>
    </HeadContext.Provider>
  );
}

function NotFound({ page }) {
  useEffect(() => {
    document.documentElement.dataset.ready = window.location.pathname;
  }, []);
  return <div class="error" role="alert">There is no page "{page}" in the explorer. <Link to="">Home</Link></div>;
}

render(<App />, document.getElementById('app'));
