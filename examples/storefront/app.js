// rtp shop: a storefront that sends events to rtp and shows what its endpoints answer.
//
// Open it as /storefront/?token=<token> on a running `rtp dev` / `rtp serve`. The token
// needs DATASOURCES:APPEND on events and PIPES:READ on the endpoints (an admin token works).
// Add &api=http://host:port to talk to a server on another origin.
"use strict";

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || localStorage.getItem("rtp_token") || "";
if (params.get("token")) localStorage.setItem("rtp_token", TOKEN);
const API = (params.get("api") || "").replace(/\/$/, "");
const SESSION_IDLE_MS = 30 * 60 * 1000;
const POLL_MS = 3000;

const ICONS = {
  sunglasses: "🕶️", shoes: "👟", bags: "👜", watches: "⌚", hats: "👒", jackets: "🧥",
  jeans: "👖", shirts: "👔", dresses: "👗", knitwear: "🧶", activewear: "🏃", swimwear: "🩱",
  jewelry: "💍", belts: "🪢", scarves: "🧣", socks: "🧦", wallets: "👛", luggage: "🧳",
  home: "🕯️", beauty: "🧴",
};
const REASONS = {
  session: "matches this visit", co_viewed: "viewed together", category_affinity: "you like this category",
  brand_affinity: "a brand you like", trending: "trending", catalogue: "from the catalogue",
};

const $ = (id) => document.getElementById(id);
const state = {
  user: localStorage.getItem("rtp_user") || newId("u_web_"),
  session: null,
  cart: JSON.parse(localStorage.getItem("rtp_cart") || "[]"),
  category: "",
  query: "",
  products: new Map(), // product_id -> product, everything seen in any answer
  referrer: document.referrer ? new URL(document.referrer).hostname : "",
  lastRecs: "",
  pendingClick: 0, // when the last event was sent, to show how fast recommendations reacted
};
localStorage.setItem("rtp_user", state.user);

function newId(prefix) {
  return prefix + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
}

function currentSession() {
  const now = Date.now();
  const saved = JSON.parse(sessionStorage.getItem("rtp_session") || "null");
  if (saved && now - saved.last < SESSION_IDLE_MS) {
    saved.last = now;
    sessionStorage.setItem("rtp_session", JSON.stringify(saved));
    return saved.id;
  }
  const fresh = { id: newId("s_web_"), last: now };
  sessionStorage.setItem("rtp_session", JSON.stringify(fresh));
  return fresh.id;
}

// -- talking to rtp ---------------------------------------------------------------------

function headers(extra = {}) {
  return TOKEN ? { Authorization: `Bearer ${TOKEN}`, ...extra } : extra;
}

async function pipe(name, args = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(args)) if (v !== "" && v != null) qs.set(k, v);
  const res = await fetch(`${API}/v0/pipes/${name}.json?${qs}`, { headers: headers() });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${name}: ${body.error || res.status}`);
  return body.data || [];
}

function stamp(date = new Date()) {
  return date.toISOString().replace("T", " ").replace("Z", ""); // 2026-11-20 11:40:00.000 (UTC)
}

async function track(eventType, product = null, extra = {}) {
  state.session = currentSession();
  const rows = (Array.isArray(product) ? product : [product]).map((p) => ({
    timestamp: stamp(),
    event_type: eventType,
    user_id: state.user,
    session_id: state.session,
    product_id: p ? p.product_id : "",
    category: p ? p.category : "",
    brand: p ? p.brand : "",
    price: p ? p.price : 0,
    query: extra.query || "",
    referrer: state.referrer,
  }));
  state.pendingClick = performance.now();
  const res = await fetch(`${API}/v0/events?name=events&wait=true`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/x-ndjson" }),
    body: rows.map((r) => JSON.stringify(r)).join("\n") + "\n",
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(`events: ${body.error || res.status}`);
  }
  $("last-event").textContent = `sent ${eventType}${product && !Array.isArray(product) ? " " + product.product_id : ""}`;
  refreshPersonal();
}

// -- rendering --------------------------------------------------------------------------

function money(x) {
  return Number(x).toFixed(2);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function remember(rows) {
  for (const row of rows) state.products.set(row.product_id, { ...state.products.get(row.product_id), ...row });
  return rows;
}

function card(p) {
  const out = p.stock === 0;
  return el("article", { class: "card" + (out ? " sold-out" : ""), "data-product": p.product_id,
                         tabindex: "0", onclick: () => openProduct(p.product_id),
                         onkeydown: (e) => e.key === "Enter" && openProduct(p.product_id) },
    el("div", { class: `thumb cat-${p.category}` }, ICONS[p.category] || "🛍️"),
    el("h3", {}, p.name),
    el("p", { class: "brand" }, p.brand),
    el("p", { class: "price" }, money(p.price), out ? el("span", { class: "tag" }, "sold out") : null));
}

function miniItem(p, note) {
  return el("li", { "data-product": p.product_id, onclick: () => openProduct(p.product_id) },
    el("span", { class: `dot cat-${p.category}` }, ICONS[p.category] || "🛍️"),
    el("span", { class: "mini-name" }, p.name, el("small", {}, `${p.brand} · ${money(p.price)}`)),
    note ? el("span", { class: "why" }, note) : null);
}

async function loadCatalogue() {
  const rows = remember(await pipe("catalogue", {
    category: state.category, search: state.query, per_category: state.category || state.query ? 60 : 4,
  }));
  $("grid-title").textContent = state.query ? `Results for “${state.query}”`
    : state.category ? state.category[0].toUpperCase() + state.category.slice(1) : "All products";
  const grid = $("grid");
  grid.replaceChildren(...(rows.length ? rows.map(card) : [el("p", { class: "muted" }, "Nothing here yet.")]));
  if (!state.category && !state.query) renderCategories(rows);
}

function renderCategories(rows) {
  if (rows) state.categories = [...new Set(rows.map((r) => r.category))];
  const button = (label, category) => el("button", {
    class: state.category === category ? "active" : "", onclick: () => pick(category) }, label);
  $("categories").replaceChildren(button("All", ""),
    ...(state.categories || []).map((c) => button(`${ICONS[c] || ""} ${c}`, c)));
}

function pick(category) {
  state.category = category;
  state.query = "";
  $("search").value = "";
  renderCategories();
  loadCatalogue().catch(showError);
}

async function refreshRecommendations() {
  const rows = remember(await pipe("recommendations", { user_id: state.user, session_id: state.session || "", limit: 8 }));
  const key = rows.map((r) => r.product_id).join(",");
  if (key !== state.lastRecs && state.pendingClick) {
    $("recs-fresh").textContent = `updated ${Math.round(performance.now() - state.pendingClick)} ms after your click`;
  }
  if (state.pendingClick) state.pendingClick = 0;
  state.lastRecs = key;
  $("recs").replaceChildren(...rows.map((r) => miniItem(r, REASONS[r.reason] || r.reason)));
}

async function refreshTrending() {
  const rows = remember(await pipe("trending", { limit: 8 }));
  $("trending").replaceChildren(...(rows.length ? rows.map((r) => miniItem(r, `${r.views} view${r.views == 1 ? "" : "s"}`))
    : [el("li", { class: "muted" }, "Quiet for the last hour.")]));
}

async function refreshOffer() {
  const value = cartValue();
  const [offer] = await pipe("offer", { user_id: state.user, cart_value: value.toFixed(2) });
  const box = $("offer");
  if (offer && offer.offer !== "none" && offer.message) {
    box.textContent = offer.message;
    box.dataset.offer = offer.offer;
    box.hidden = false;
  } else {
    box.hidden = true;
  }
  $("offer-inline").textContent = offer && offer.message ? offer.message : "";
}

function refreshPersonal() {
  return Promise.all([refreshRecommendations(), refreshOffer()]).catch(showError);
}

async function openProduct(id) {
  const p = state.products.get(id);
  if (!p) return;
  const detail = $("product-detail");
  const out = p.stock === 0;
  detail.replaceChildren(
    el("div", { class: `thumb big cat-${p.category}` }, ICONS[p.category] || "🛍️"),
    el("div", {},
      el("p", { class: "brand" }, `${p.brand} · ${p.category}`),
      el("h2", {}, p.name),
      el("p", { class: "price big" }, money(p.price)),
      el("p", { class: out ? "tag" : "muted" }, out ? "Sold out" : p.stock != null ? `${p.stock} in stock` : ""),
      el("button", { class: "primary", ...(out ? { disabled: "" } : {}), onclick: () => addToCart(p) }, "Add to cart")));
  $("similar").replaceChildren(el("li", { class: "muted" }, "…"));
  $("product-dialog").showModal();
  track("view", p).catch(showError);
  const similar = remember(await pipe("similar_products", { product_id: id, limit: 6 }).catch(() => []));
  $("similar").replaceChildren(...(similar.length ? similar.map((s) => miniItem(s, s.co_purchased > 0 ? "bought together" : s.co_viewed > 0 ? "viewed together" : s.same_category ? "same category" : "same brand"))
    : [el("li", { class: "muted" }, "No alternatives in stock.")]));
}

// -- cart -------------------------------------------------------------------------------

function cartValue() {
  return state.cart.reduce((sum, p) => sum + Number(p.price), 0);
}

function saveCart() {
  localStorage.setItem("rtp_cart", JSON.stringify(state.cart));
  $("cart-count").textContent = state.cart.length;
  $("cart-total").textContent = money(cartValue());
  $("cart-sum").textContent = money(cartValue());
  $("cart-lines").replaceChildren(...state.cart.map((p, i) => el("li", {},
    el("span", {}, `${ICONS[p.category] || ""} ${p.name}`), el("span", {}, money(p.price)),
    el("button", { class: "link", onclick: () => { state.cart.splice(i, 1); saveCart(); refreshOffer().catch(showError); } }, "remove"))));
  $("checkout").disabled = state.cart.length === 0;
}

function addToCart(p) {
  state.cart.push({ product_id: p.product_id, name: p.name, category: p.category, brand: p.brand, price: p.price });
  saveCart();
  track("add_to_cart", p).catch(showError);
}

async function checkout() {
  if (!state.cart.length) return;
  const items = state.cart.splice(0);
  saveCart();
  $("cart-dialog").close();
  await track("purchase", items);
  loadCatalogue().catch(showError);
}

// -- wiring -----------------------------------------------------------------------------

function showError(err) {
  const box = $("error");
  box.textContent = String(err.message || err) + (TOKEN ? "" : " (open this page with ?token=<token>)");
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => (box.hidden = true), 6000);
}

$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.query = $("search").value.trim();
  state.category = "";
  if (state.query) track("search", null, { query: state.query }).catch(showError);
  loadCatalogue().catch(showError);
});
$("home").addEventListener("click", (e) => { e.preventDefault(); pick(""); });
$("cart-button").addEventListener("click", () => $("cart-dialog").showModal());
$("checkout").addEventListener("click", () => checkout().catch(showError));
$("new-shopper").addEventListener("click", () => {
  localStorage.removeItem("rtp_user");
  localStorage.removeItem("rtp_cart");
  sessionStorage.removeItem("rtp_session");
  location.reload();
});

state.session = currentSession();
$("who").textContent = state.user;
$("session").textContent = state.session;
saveCart();
loadCatalogue().catch(showError);
refreshTrending().catch(showError);
refreshPersonal();
setInterval(() => {
  refreshTrending().catch(showError);
  refreshRecommendations().catch(showError);
}, POLL_MS);
