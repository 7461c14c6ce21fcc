/* The preference centre: reads the person's token from the URL fragment and talks to /v1/people/me.
 *
 * Plain JavaScript (an ES module), no framework, nothing loaded from elsewhere. Every value from the API is
 * written with textContent, never as HTML. The page shows either the whole centre or a refusal, never a
 * half-working form.
 */
import {
  CONSENT_CHANNELS,
  FREQUENCIES,
  PURPOSES,
  PURPOSE_ORDER,
  SOURCES,
  ago,
  evidenceWords,
  formatDate,
  formatDateTime,
  humanize,
  languageName,
  whyWords,
  words,
} from "./words.js";

const API = "/v1/people/me";

// What PUT /v1/people/me/preferences takes: a stated trait the person can re-confirm from the page.
const STATED_KEYS = new Set([
  "language", "first_name", "last_name", "size", "sizes", "favourite_categories", "disliked_categories",
  "favourite_colours", "disliked_colours", "favourite_brands", "disliked_brands", "preferred_channels",
  "contact_frequency", "pause_until", "answers",
]);

const LIST_FIELDS = ["favourite_categories", "disliked_categories", "favourite_colours", "disliked_colours"];
const ABOUT_QUESTION = "about_you";

let token = null;
let baseline = null; // what the form held when it was last filled from the profile

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// ---- talking to the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

function readToken() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const value = (params.get("token") || "").trim();
  return value || null;
}

async function call(method, path, body) {
  const init = {
    method: method,
    headers: { Authorization: "Bearer " + token, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (_) {
    throw new ApiError(0, "network", "We could not reach the shop. Check your connection and try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || "",
      error.field || null);
  }
  return data;
}

// ---- showing the page ---------------------------------------------------------------------------

let statusTimer = null;

function say(message, kind) {
  const status = $("status");
  window.clearTimeout(statusTimer);
  status.className = "status " + (kind || "ok");
  status.textContent = "";
  // A fresh text node, a beat later, so screen readers announce a repeated message again.
  statusTimer = window.setTimeout(() => {
    status.textContent = message;
  }, 30);
}

function refuse(error) {
  let reason;
  let help = "Ask the shop for a new link: a link works for a limited time. For your " +
    "privacy, we never show anyone's preferences without a valid link.";
  if (!error) {
    reason = "This page needs the personal link the shop sent you. The link you used has no key in it.";
  } else if (error.status === 401 || error.status === 403) {
    reason = /expired/i.test(error.message + " " + error.code)
      ? "This link has expired."
      : "This link is not valid. It may have been cut short or changed.";
  } else if (error.status === 404) {
    reason = "We hold no preferences for this link: the data may have been erased.";
  } else if (error.status === 0) {
    reason = "We could not reach the shop.";
    help = "Check your connection, then reload this page.";
  } else {
    reason = "Something went wrong on our side.";
    help = "Please try again in a few minutes. Nothing you did was lost.";
  }
  window.clearTimeout(statusTimer);
  $("loading").hidden = true;
  $("centre").hidden = true;
  $("status").textContent = "";
  $("refusal-reason").textContent = reason;
  $("refusal-help").textContent = help;
  $("refusal").hidden = false;
  document.title = "Link not valid: your preferences";
  const title = $("refusal-title");
  title.setAttribute("tabindex", "-1");
  title.focus();
}

function renderSummary(profile) {
  const parts = [];
  const ids = profile.identities || profile.ids || [];
  const shown = ids
    .filter((i) => i && i.value && i.kind !== "anonymous_id")
    .map((i) => (i.kind === "email" ? "your email " : i.kind === "user_id" ? "customer number " : "") + i.value);
  if (shown.length) parts.push("We recognise you by " + shown.join(", ") + ".");
  if (typeof profile.event_count === "number") {
    let text = "We have " + profile.event_count + (profile.event_count === 1 ? " record" : " records") +
      " of what you did in the shop";
    if (profile.first_seen) text += ", since " + formatDate(profile.first_seen);
    parts.push(text + ".");
  }
  $("known-summary").textContent = parts.join(" ");
}

function rejectButtons(trait) {
  const row = el("div", { class: "reject-row" });
  const label = humanize(trait.key);
  const values = Array.isArray(trait.value) && trait.value.length > 1 ? trait.value : [undefined];
  for (const value of values) {
    const shown = value === undefined ? words(trait.key, trait.value) : words(trait.key, value);
    const button = el("button", {
      type: "button",
      class: "reject",
      "aria-label": "That's not me: " + label + ", " + shown,
    }, value === undefined ? "That's not me" : "That's not me: " + shown);
    button.addEventListener("click", () => reject(trait.key, value, shown, button));
    row.appendChild(button);
  }
  return row;
}

function confirmRow(trait) {
  const row = el("div", { class: "reject-row" });
  const question = el("span", { class: "trait-meta" },
    "You told us this a while ago. Is it still right? If not, change it in the form below.");
  const shown = words(trait.key, trait.value);
  const button = el("button", {
    type: "button",
    class: "confirm",
    "aria-label": "Still right: " + humanize(trait.key) + ", " + shown,
  }, "Still right");
  button.addEventListener("click", () => confirmStated(trait, button));
  row.appendChild(question);
  row.appendChild(button);
  return row;
}

function renderTraits(profile) {
  const traits = profile.traits || [];
  for (const [source, heading] of SOURCES) {
    const list = $("traits-" + source);
    list.replaceChildren();
    const mine = traits.filter((t) => t.source === source);
    if (!mine.length) {
      const empty = {
        stated: "Nothing yet. Use the form below to tell us what you like.",
        observed: "Nothing yet.",
        inferred: "We have not guessed anything about you.",
      }[source];
      list.appendChild(el("li", { class: "empty" }, empty));
      continue;
    }
    for (const trait of mine) {
      const item = el("li", { "data-key": trait.key });
      item.appendChild(el("span", { class: "trait-name" }, humanize(trait.key)));
      item.appendChild(el("span", { class: "trait-value" }, words(trait.key, trait.value)));
      const meta = el("span", { class: "trait-meta" });
      meta.appendChild(el("span", { class: "badge " + source }, heading));
      const details = [ago(trait.age_days)].concat(evidenceWords(trait)).filter(Boolean);
      meta.appendChild(document.createTextNode(details.join(" · ")));
      item.appendChild(meta);
      const why = whyWords(trait);
      if (why) item.appendChild(el("span", { class: "trait-meta" }, why));
      if (trait.needs_confirmation && STATED_KEYS.has(trait.key)) item.appendChild(confirmRow(trait));
      if (source === "inferred") item.appendChild(rejectButtons(trait));
      list.appendChild(item);
    }
  }
  renderSummary(profile);
}

function purposeNote(purpose, state) {
  if (purpose === "necessary") return PURPOSES.necessary[1];
  const parts = [];
  if (PURPOSES[purpose]) parts.push(PURPOSES[purpose][1]);
  if (state.description) parts.push(state.description);
  if (state.default || !state.at) {
    parts.push("You have not chosen yet, so the shop's default applies: " + (state.granted ? "on." : "off."));
  } else {
    parts.push("You chose " + (state.granted ? "yes" : "no") + " on " + formatDate(state.at) + ".");
  }
  return parts.join(" ");
}

function renderConsent(consent) {
  const purposes = consent.purposes || {};
  const names = Object.keys(purposes).sort((a, b) => {
    const ia = PURPOSE_ORDER.indexOf(a);
    const ib = PURPOSE_ORDER.indexOf(b);
    if (ia !== -1 || ib !== -1) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
    return a.localeCompare(b);
  });
  const focused = document.activeElement && document.activeElement.id;
  const list = $("consent-list");
  list.replaceChildren();
  for (const purpose of names) {
    const state = purposes[purpose] || {};
    const id = "consent-" + purpose;
    const item = el("li");
    const box = el("input", {
      type: "checkbox",
      id: id,
      name: "consent",
      value: purpose,
      "aria-describedby": id + "-note",
    });
    box.checked = purpose === "necessary" ? true : Boolean(state.granted);
    if (purpose === "necessary") box.disabled = true;
    else box.addEventListener("change", () => changeConsent(purpose, box));
    const text = el("div");
    text.appendChild(el("label", { for: id }, state.label || (PURPOSES[purpose] || [humanize(purpose)])[0]));
    text.appendChild(el("span", { id: id + "-note", class: "consent-note" }, purposeNote(purpose, state)));
    item.appendChild(box);
    item.appendChild(text);
    list.appendChild(item);
  }
  if (focused && $(focused)) $(focused).focus();

  const history = $("consent-history");
  history.replaceChildren();
  const entries = (consent.history || []).slice().reverse(); // newest first
  if (!entries.length) history.appendChild(el("li", { class: "empty" }, "You have not made any choice yet."));
  for (const entry of entries) {
    const what = (PURPOSES[entry.purpose] || [humanize(entry.purpose)])[0];
    const how = CONSENT_CHANNELS[entry.channel] || (entry.channel ? "through " + humanize(entry.channel) : "");
    const item = el("li");
    item.appendChild(el("span", { class: "history-when" }, entry.at ? formatDateTime(entry.at) : ""));
    item.appendChild(document.createTextNode(
      what + ": " + (entry.granted ? "yes" : "no") + (how ? ", " + how : "") + "."));
    history.appendChild(item);
  }
}

// ---- the form of stated preferences -------------------------------------------------------------

function stated(profile) {
  const out = {};
  for (const trait of profile.traits || []) {
    if (trait.source === "stated") out[trait.key] = trait.value;
  }
  return out;
}

function ensureOption(select, value, text) {
  if (!value) return;
  if (![...select.options].some((o) => o.value === value)) select.appendChild(el("option", { value }, text));
}

function fillForm(profile) {
  const mine = stated(profile);
  const form = $("preferences-form");
  ensureOption(form.elements.language, mine.language, languageName(String(mine.language || "")));
  form.elements.language.value = mine.language || "";
  form.elements.size.value = typeof mine.size === "string" ? mine.size : "";
  const sizes = mine.sizes && typeof mine.sizes === "object" ? mine.sizes : {};
  for (const input of form.querySelectorAll("[data-size]")) {
    const value = sizes[input.dataset.size];
    input.value = value === undefined || value === null ? "" : String(value);
  }
  for (const name of LIST_FIELDS) {
    const value = mine[name];
    form.elements[name].value = Array.isArray(value) ? value.join(", ") : value ? String(value) : "";
  }
  const channels = Array.isArray(mine.preferred_channels) ? mine.preferred_channels : [];
  for (const box of form.querySelectorAll('input[name="preferred_channels"]')) {
    box.checked = channels.includes(box.value);
  }
  const frequency = mine.contact_frequency ? String(mine.contact_frequency) : "";
  ensureOption(form.elements.contact_frequency, frequency, FREQUENCIES[frequency] || frequency);
  form.elements.contact_frequency.value = frequency;
  form.elements.pause_until.value = mine.pause_until ? String(mine.pause_until).slice(0, 10) : "";
  const answers = mine.answers && typeof mine.answers === "object" ? mine.answers : {};
  form.elements["answers." + ABOUT_QUESTION].value = answers[ABOUT_QUESTION] || "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  baseline = readForm();
}

function splitList(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function readForm() {
  const form = $("preferences-form");
  const sizes = {};
  for (const input of form.querySelectorAll("[data-size]")) {
    if (input.value.trim()) sizes[input.dataset.size] = input.value.trim();
  }
  const values = {
    language: form.elements.language.value || null,
    size: form.elements.size.value.trim() || null,
    sizes: Object.keys(sizes).length ? sizes : null,
    preferred_channels: null,
    contact_frequency: form.elements.contact_frequency.value || null,
    pause_until: form.elements.pause_until.value || null,
    answers: null,
  };
  for (const name of LIST_FIELDS) {
    const items = splitList(form.elements[name].value);
    values[name] = items.length ? items : null;
  }
  const channels = [...form.querySelectorAll('input[name="preferred_channels"]:checked')].map((b) => b.value);
  values.preferred_channels = channels.length ? channels : null;
  const about = form.elements["answers." + ABOUT_QUESTION].value.trim();
  values.answers = about ? { [ABOUT_QUESTION]: about } : null;
  return values;
}

function changes() {
  const now = readForm();
  const body = {};
  for (const [key, value] of Object.entries(now)) {
    if (JSON.stringify(value) !== JSON.stringify(baseline[key])) body[key] = value;
  }
  return body;
}

function markInvalid(field) {
  if (!field) return null;
  const form = $("preferences-form");
  const name = String(field).split(".")[0];
  const target = form.querySelector('[name="' + CSS.escape(field) + '"]') ||
    form.querySelector('[name="' + CSS.escape(name) + '"]') ||
    form.querySelector('[name^="' + CSS.escape(name) + '."]');
  if (target) {
    target.setAttribute("aria-invalid", "true");
    target.focus();
  }
  return target;
}

async function save(event) {
  event.preventDefault();
  const form = $("preferences-form");
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const body = changes();
  if (!Object.keys(body).length) {
    say("Nothing to save: you have not changed anything.", "ok");
    return;
  }
  const button = $("save");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const profile = await call("PUT", "/preferences", body);
    renderTraits(profile);
    fillForm(profile);
    say("Saved. What you told us now comes first.", "ok");
  } catch (error) {
    if (error.status === 401) return refuse(error);
    const target = markInvalid(error.field);
    const what = target && target.labels && target.labels[0] ? target.labels[0].textContent + ": " : "";
    let message = error.message || "please check your answers and try again.";
    if (error.field && message.startsWith(error.field + ": ")) message = message.slice(error.field.length + 2);
    say("Not saved. " + what + message, "bad");
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

const pendingConsent = new Set();

async function changeConsent(purpose, box) {
  const wanted = box.checked;
  if (pendingConsent.has(purpose)) {
    box.checked = !wanted; // one change at a time per purpose; the box keeps focus (not disabled)
    return;
  }
  pendingConsent.add(purpose);
  box.setAttribute("aria-busy", "true");
  const name = (PURPOSES[purpose] || [humanize(purpose)])[0];
  try {
    const consent = await call("PUT", "/consent", { [purpose]: wanted });
    renderConsent(consent);
    say(name + ": " + (wanted ? "allowed." : "not allowed any more."), "ok");
  } catch (error) {
    if (error.status === 401) return refuse(error);
    box.checked = !wanted;
    say("Not saved. " + name + ": " + (error.message || "please try again."), "bad");
  } finally {
    pendingConsent.delete(purpose);
    box.removeAttribute("aria-busy");
  }
}

async function confirmStated(trait, button) {
  button.disabled = true;
  try {
    const profile = await call("PUT", "/preferences", { [trait.key]: trait.value });
    renderTraits(profile);
    fillForm(profile);
    say("Thank you. " + humanize(trait.key) + " is confirmed.", "ok");
    const heading = $("stated-title");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  } catch (error) {
    if (error.status === 401) return refuse(error);
    button.disabled = false;
    say("Not saved. " + (error.message || "please try again."), "bad");
  }
}

async function reject(key, value, shown, button) {
  button.disabled = true;
  const body = value === undefined ? { key: key } : { key: key, value: value };
  try {
    const profile = await call("POST", "/rejections", body);
    renderTraits(profile);
    fillForm(profile);
    say("Thank you. We will not guess “" + shown + "” again.", "ok");
    const heading = $("inferred-title");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  } catch (error) {
    if (error.status === 401) return refuse(error);
    button.disabled = false;
    say("Not saved. " + (error.message || "please try again."), "bad");
  }
}

const WISH_SOURCES = {
  stated: "you asked",
  staff: "you asked in the shop",
  observed: "you looked at it while it was sold out",
};

function wishWords(wish) {
  const parts = Object.entries(wish.attributes || {}).map(([key, value]) => humanize(key) + " " + value);
  if (wish.variant && wish.variant.attributes) {
    for (const [key, value] of Object.entries(wish.variant.attributes)) parts.push(humanize(key) + " " + value);
  }
  return parts.join(", ");
}

function renderWishes(wishes) {
  const list = $("wishes-list");
  list.replaceChildren();
  const live = (wishes || []).filter((w) => w.status === "open" || w.status === "notified");
  if (!live.length) {
    list.appendChild(el("li", { class: "empty" }, "Nothing. When something you want is sold out, you can ask us to tell you when it is back."));
    return;
  }
  for (const wish of live) {
    const item = el("li", { "data-wish": String(wish.id) });
    item.appendChild(el("span", { class: "trait-name" }, wish.title || wish.item_id));
    const wanted = wishWords(wish);
    if (wanted) item.appendChild(el("span", { class: "trait-value" }, wanted));
    const meta = [WISH_SOURCES[wish.source] || wish.source, formatDate(wish.created_at),
      "until " + formatDate(wish.expires_at)];
    item.appendChild(el("span", { class: "trait-meta" }, meta.join(" · ")));
    const row = el("div", { class: "reject-row" });
    const button = el("button", {
      type: "button",
      class: "reject",
      "aria-label": "Stop telling me about " + (wish.title || wish.item_id),
    }, "Stop telling me");
    button.addEventListener("click", () => dropWish(wish, button));
    row.appendChild(button);
    item.appendChild(row);
    list.appendChild(item);
  }
}

async function dropWish(wish, button) {
  button.disabled = true;
  try {
    await call("DELETE", "/wishes/" + encodeURIComponent(String(wish.id)));
    renderWishes((await call("GET", "/wishes")).items);
    say("Done. We will not tell you about " + (wish.title || wish.item_id) + ".", "ok");
    const heading = $("wishes-title");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  } catch (error) {
    if (error.status === 401) return refuse(error);
    button.disabled = false;
    say("Not saved. " + (error.message || "please try again."), "bad");
  }
}

async function start() {
  $("refusal").hidden = true;
  $("centre").hidden = true;
  $("loading").hidden = false;
  token = readToken();
  if (!token) return refuse(null);
  let profile;
  let consent;
  let wishes;
  try {
    [profile, consent, wishes] = await Promise.all([
      call("GET", ""), call("GET", "/consent"), call("GET", "/wishes"),
    ]);
  } catch (error) {
    return refuse(error);
  }
  renderTraits(profile);
  renderWishes(wishes.items);
  renderConsent(consent);
  fillForm(profile);
  $("loading").hidden = true;
  $("centre").hidden = false;
  document.title = "Your preferences";
}

document.addEventListener("DOMContentLoaded", () => {
  $("preferences-form").addEventListener("submit", save);
  window.addEventListener("hashchange", start);
  start();
});
