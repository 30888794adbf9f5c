// @ts-check
/**
 * The console's shell: sign-in, the views the key's role may use, and hash routing
 * (#health, #billing, #planner?query=…, #datasets?dataset=…). The URL carries view
 * parameters only, never the key.
 */
import { api, ApiError, explain, session } from './api.js';
import { h, notice, replace } from './dom.js';
import * as billing from './views/billing.js';
import * as datasets from './views/datasets.js';
import * as health from './views/health.js';
import * as planner from './views/planner.js';

/** @typedef {{ params: URLSearchParams, setParams: (p: URLSearchParams) => void }} Nav */
/** @typedef {{ id: string, label: string, roles: string[] | 'any', view: { render: (root: HTMLElement, nav: Nav) => unknown } }} ViewSpec */

/** @type {ViewSpec[]} */
const VIEWS = [
  { id: 'health', label: 'Pipeline health', roles: 'any', view: health },
  { id: 'billing', label: 'Account usage', roles: ['billing'], view: billing },
  { id: 'planner', label: 'Fleet capacity', roles: ['planner'], view: planner },
  { id: 'datasets', label: 'Datasets', roles: ['datascience'], view: datasets },
];
const HOME = { billing: 'billing', planner: 'planner', datascience: 'datasets' };

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const signIn = $('sign-in');
const signInError = $('sign-in-error');
const keyInput = /** @type {HTMLInputElement} */ ($('key-input'));
const nav = $('nav');
const who = $('who');
const viewRoot = $('view');

/** @type {{ id: string, role: string } | undefined} */
let me;
/** @type {unknown} */
let cleanup;

/** @param {string} role */
const allowed = (role) => VIEWS.filter((v) => v.roles === 'any' || v.roles.includes(role));

function route() {
  const [id = '', qs = ''] = location.hash.replace(/^#/, '').split('?');
  return { id, params: new URLSearchParams(qs) };
}

function show() {
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  if (!me) return;
  const { id, params } = route();
  const spec = VIEWS.find((v) => v.id === id);
  if (!spec) {
    location.replace(`#${HOME[/** @type {keyof typeof HOME} */ (me.role)] ?? 'health'}`);
    return;
  }
  for (const a of nav.querySelectorAll('a')) a.setAttribute('aria-current', a.getAttribute('href') === `#${spec.id}` ? 'page' : 'false');
  document.title = `${spec.label} · usage-meter console`;
  const root = h('div', { class: 'view', 'data-view': spec.id });
  replace(viewRoot, root);
  // A view outside the key's role is still reachable by its URL: the API's 403 says why.
  if (spec.roles !== 'any' && !spec.roles.includes(me.role)) root.append(notice('warn', `This view is for ${spec.roles.join(' or ')} keys; this key (${me.id}) is a ${me.role} key. Its requests will be refused.`));
  const setParams = (/** @type {URLSearchParams} */ p) => history.replaceState(null, '', `#${spec.id}?${p.toString()}`);
  const body = h('div');
  root.append(body);
  const result = spec.view.render(body, { params, setParams });
  if (typeof result === 'function') cleanup = result;
}

/** @param {{ id: string, role: string }} key */
function enter(key) {
  me = key;
  signIn.hidden = true;
  replace(nav, allowed(key.role).map((v) => h('a', { href: `#${v.id}`, 'data-nav': v.id, text: v.label })));
  nav.hidden = false;
  replace($('who-label'), `${key.id} · ${key.role}`);
  who.hidden = false;
  show();
}

/** @param {string} [message] */
function leave(message) {
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  me = undefined;
  session.clear();
  nav.hidden = true;
  who.hidden = true;
  replace(viewRoot);
  signIn.hidden = false;
  signInError.hidden = !message;
  signInError.textContent = message ?? '';
  keyInput.focus();
}

/** Checks a key against the API (any valid key may read /v1/status) and learns its role. @param {string} key */
async function identify(key) {
  const status = await api('/v1/status', { key });
  return /** @type {{ id: string, role: string }} */ (status.key);
}

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  signInError.hidden = true;
  try {
    const id = await identify(key);
    session.set(key);
    keyInput.value = ''; // not left in the page
    enter(id);
  } catch (err) {
    signInError.textContent = err instanceof ApiError && err.status === 401 ? 'This key was not accepted (401): check it and try again.' : explain(err);
    signInError.hidden = false;
  }
});

$('sign-out').addEventListener('click', () => leave());
window.addEventListener('hashchange', show);

async function boot() {
  const key = session.key();
  if (!key) return leave();
  try {
    enter(await identify(key));
  } catch (err) {
    leave(err instanceof ApiError && err.status === 401 ? 'The saved key is no longer accepted (401): sign in again.' : explain(err));
  }
}
boot();
