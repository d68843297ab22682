// Verkosto dashboards: plain JavaScript and inline SVG, served by the API itself (no CDN).
// This file is the core every page shares; the pages register themselves in `pages`
// (boards.js, partnership.js, attention.js) and the record forms live in forms.js and
// record.js. All are classic scripts loaded in order, so they share these names.
"use strict";

// No token lives here: the page was opened with a session cookie (HttpOnly, set when
// signing in), and every fetch to this same origin carries it.
const params = new URLSearchParams(location.search);
const pages = {};

function signIn() {
  location.assign(`/dashboard/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
}

// Navigating away aborts whatever is still loading; a page restored from the back/forward
// cache starts afresh (its refresh loop ended with the abort).
const navigation = new AbortController();
addEventListener("pagehide", () => navigation.abort());
addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });

// An answer that is not ok, with its status and problem details (RFC 9457) if any.
class ApiError extends Error {
  constructor(status, path, problem) {
    super(problem?.detail || problem?.title || `${status} ${path}`);
    this.status = status;
    this.problem = problem;
  }
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json().catch(() => null) : null;
}

// Conditional reads: the last answer and its ETag per address. A refresh that finds
// nothing changed gets 304 (no body) and reuses the answer; the page then keeps what it
// shows instead of rebuilding it.
const known = new Map();
let refresh = { changed: true };
let shown = false;

async function api(path, accept) {
  const key = `${accept || "json"} ${path}`;
  const previous = known.get(key);
  const headers = { Accept: accept || "application/json" };
  if (previous) headers["If-None-Match"] = previous.etag;
  // "no-store": the browser's cache neither keeps these answers nor revalidates on its
  // own, so the 304 reaches this code instead of a silent copy.
  const response = await fetch(path, { credentials: "same-origin", headers, cache: "no-store", signal: navigation.signal });
  if (response.status === 401) signIn(); // the session ended (signed out, expired or revoked)
  if (response.status === 304 && previous) return previous.body;
  if (!response.ok) throw new ApiError(response.status, path, await problemOf(response));
  const body = accept === "text/markdown" ? await response.text() : await response.json();
  refresh.changed = true;
  const etag = response.headers.get("ETag");
  if (etag) known.set(key, { etag, body });
  return body;
}

// Whether this refresh may keep the page as it is: everything it read was unchanged.
const unchanged = () => shown && !refresh.changed;

// The server's clock, learnt from its answers' as_of: polls name their moment, "now"
// rounded up to the minute by the server's clock, so an unchanged answer is a 304 the
// server gives without computing it again. Up, not down: what happened in the last
// minute is included; time-driven flags may run up to a minute early.
let skew = null;
function learnClock(body) {
  if (skew === null && body && body.as_of) skew = Date.parse(body.as_of) - Date.now();
}
function minute(path) {
  if (skew === null) return path; // the first read asks for "now" and learns the clock
  const at = new Date(Math.ceil((Date.now() + skew) / 60000) * 60000).toISOString().replace(".000Z", "Z");
  return path + (path.includes("?") ? "&" : "?") + `as_of=${encodeURIComponent(at)}`;
}

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    k === "class" ? (node.className = v) : node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
};

function fresh(body) {
  document.querySelector(".fresh").textContent = `projection at position ${body.position} · ${new Date().toLocaleTimeString()}`;
}

// What the refresh loop redraws; the record forms sit after it in <main> and are built
// once, so a refresh never wipes what someone is typing.
const view = () => document.querySelector("#view");
const show = (...nodes) => view().replaceChildren(...nodes);
// Whether this session may record (its token has events:write): the server says so.
const writes = () => document.body.dataset.writes === "yes";

// A part of the page built once, before or after the view, and kept across refreshes
// (filters and forms: what someone is typing survives the page following the data).
async function section(id, build, before = false) {
  if (document.getElementById(id)) return;
  const placeholder = el("section", { id });
  before ? view().before(placeholder) : document.querySelector("main").append(placeholder);
  try {
    placeholder.replaceWith(await build(id));
  } catch (error) {
    placeholder.remove(); // tried again on the next refresh
    throw error;
  }
}

// Follows the projections without a reload: the next refresh is scheduled only once the
// previous one has answered, so a slow server never has two refreshes of a page at once.
// poke() asks for one now (a "more" button, a date picker, a recorded form) without
// overlapping either: during a refresh it only asks for another right after.
const INTERVAL_MS = 3000;
let timer = 0, running = false, again = false, poked = false;
let current = null;
async function run() {
  clearTimeout(timer);
  running = true;
  refresh = { changed: poked };
  poked = false;
  try {
    await current();
    shown = true;
  } catch (error) {
    if (navigation.signal.aborted) return;
    shown = false; // the next answer is drawn again, even if unchanged
    show(el("p", { class: "error" }, `Cannot load: ${error.message}.`));
  } finally {
    running = false;
  }
  if (navigation.signal.aborted) return;
  if (again) { again = false; run(); } else timer = setTimeout(run, INTERVAL_MS);
}
function live(render) {
  current = render;
  run();
}
function poke() {
  poked = true;
  if (running) again = true; else run();
}

// Every script has registered its page by the time the document is parsed.
document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.pathname === `/dashboard/${page}.html`) link.setAttribute("aria-current", "page");
  }
  live(pages[page]);
});
