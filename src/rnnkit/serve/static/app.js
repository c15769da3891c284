// rnnkit serve: the page. Loads /models, draws one tab per model, each tab a form
// that calls that model's JSON API. No build step, no network outside this server.
import { sentiment, textgen, translate } from "./text.js";
import { speech, forecast } from "./media.js";

const PANELS = { sentiment, textgen, translate, speech, forecast };
const TOKEN_KEY = "rnnkit-serve-token";

// -- small DOM helpers, shared with the panels ---------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let uid = 0;
export function field(label, input, hint) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  return h("div", {}, h("label", { for: id, text: label }), input, hint ? h("small", { class: "muted", text: hint }) : null);
}

export function fmt(x, digits = 3) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

// -- talking to the server -------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function authHeaders(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

/** POST JSON or FormData; resolve to the parsed JSON answer, reject with the server's detail. */
export async function call(path, body, { signal } = {}) {
  const isForm = body instanceof FormData;
  const res = await fetch(path, {
    method: "POST",
    headers: authHeaders(isForm ? {} : { "Content-Type": "application/json" }),
    body: isForm ? body : JSON.stringify(body),
    signal,
  });
  return answer(res);
}

export async function answer(res) {
  if (res.ok) return res.json();
  let detail = `${res.status} ${res.statusText}`;
  try {
    const data = await res.json();
    if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } catch (_) { /* not JSON */ }
  const retry = res.headers.get("Retry-After");
  if (res.status === 503 && retry) detail += ` (try again in ${retry} s)`;
  if (res.status === 401) showTokenForm();
  const err = new Error(detail);
  err.status = res.status;
  throw err;
}

/** Run `work` with `button` disabled and errors shown in `errorBox` (never in the console only). */
export async function busy(button, errorBox, work) {
  errorBox.hidden = true;
  errorBox.textContent = "";
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await work();
  } catch (err) {
    if (err.name !== "AbortError") showError(errorBox, err);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function showError(box, err) {
  box.textContent = `Error: ${err && err.message ? err.message : err}`;
  box.hidden = false;
}

export function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

// -- the page ----------------------------------------------------------------------------

function showTokenForm() {
  document.getElementById("token-form").hidden = false;
  document.getElementById("token").focus();
}

function modelCard(model) {
  const metrics = Object.entries(model.metrics || {});
  return h("details", { class: "card" },
    h("summary", {}, `${model.estimator} · ${model.path}`),
    metrics.length
      ? h("dl", { class: "metrics" }, metrics.flatMap(([k, v]) => [
          h("dt", { text: k }), h("dd", { text: typeof v === "number" ? fmt(v, 4) : JSON.stringify(v) })]))
      : h("p", { class: "muted", text: "no metrics saved with this model" }),
    model.card ? h("pre", { text: model.card }) : null);
}

function selectTab(tabs, index, focus) {
  tabs.forEach((tab, i) => {
    const on = i === index;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
  });
  if (focus) tabs[index].focus();
  history.replaceState(null, "", `#${tabs[index].dataset.name}`);
}

function drawTabs(models) {
  const tablist = document.getElementById("tabs");
  const panels = document.getElementById("panels");
  tablist.replaceChildren();
  panels.replaceChildren();
  const tabs = models.map((m, i) => {
    const tab = h("button", {
      role: "tab", id: `tab-${m.name}`, "aria-controls": `panel-${m.name}`, type: "button",
      "data-name": m.name, onclick: () => selectTab(tabs, i, false),
    }, m.title, h("small", { text: m.name }));
    const panel = h("section", {
      role: "tabpanel", id: `panel-${m.name}`, "aria-labelledby": `tab-${m.name}`, tabindex: "0", hidden: true,
    }, h("h2", { text: `${m.title}: ${m.name}` }), modelCard(m));
    const draw = PANELS[m.app];
    if (draw) draw(panel, m);
    else panel.append(h("p", { text: `no page for ${m.app} models; use the API (/docs)` }));
    tablist.append(tab);
    panels.append(panel);
    return tab;
  });
  // WAI-ARIA tabs: arrows, Home and End move between tabs; Tab goes into the panel.
  tablist.addEventListener("keydown", (ev) => {
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    selectTab(tabs, (to + tabs.length) % tabs.length, true);
  });
  const wanted = models.findIndex((m) => `#${m.name}` === location.hash);
  if (tabs.length) selectTab(tabs, Math.max(wanted, 0), false);
}

async function start() {
  const status = document.getElementById("status");
  const pageError = document.getElementById("page-error");
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, hash.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  try {
    const res = await fetch("/models", { headers: authHeaders() });
    const models = await answer(res);
    document.getElementById("token-form").hidden = true;
    pageError.hidden = true;
    status.textContent = `${models.length} model${models.length === 1 ? "" : "s"} loaded`;
    drawTabs(models);
  } catch (err) {
    status.textContent = "";
    showError(pageError, err);
  }
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  start();
});
window.addEventListener("unhandledrejection", (ev) => showError(document.getElementById("page-error"), ev.reason));
window.addEventListener("error", (ev) => showError(document.getElementById("page-error"), ev.message));
start();
