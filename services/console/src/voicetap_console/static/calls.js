// The live calls page: one EventSource on the console's fan-out; rows updated in place.
import { LEG_NAMES, callDuration, el, healthText, levelOf, mediaText, meter, talkers } from "./common.js";

const activeBody = document.querySelector("#active-calls tbody");
const recentBody = document.querySelector("#recent-calls tbody");
const status = document.getElementById("feed-status");
const rows = new Map(); // call_control_id -> { row, call, ended }
const MAX_RECENT = 200;
let pending = [];

function link(call) {
  const who = `${call.from || "?"} → ${call.to || "?"}`;
  return el("td", {}, el("a", { href: `/calls/${encodeURIComponent(call.call_control_id)}`, class: "call-link", text: who }),
    el("div", { class: "id", text: call.call_control_id }));
}

function activeRow(call) {
  const row = el("tr", { "data-call": call.call_control_id, class: "call-row" },
    link(call),
    el("td", { class: "direction" }),
    el("td", { class: "duration" }),
    el("td", {}, meter(`Caller level, ${call.from || "call"}`, "lvl-in"), el("span", { class: "db db-in" })),
    el("td", {}, meter(`Agent level, ${call.from || "call"}`, "lvl-out"), el("span", { class: "db db-out" })),
    el("td", { class: "talking" }),
    el("td", { class: "media" }),
    el("td", { class: "health" }));
  return row;
}

function recentRow(call) {
  return el("tr", { "data-call": call.call_control_id, class: "call-row ended" },
    link(call),
    el("td", { class: "direction" }),
    el("td", { class: "duration" }),
    el("td", { class: "ended-at" }),
    el("td", { class: "talk-totals" }),
    el("td", { class: "overtalk-total" }),
    el("td", { class: "media" }),
    el("td", { class: "health" }));
}

function fill(entry) {
  const { row, call } = entry;
  const q = (sel) => row.querySelector(sel);
  q(".direction").textContent = call.direction || "—";
  q(".duration").textContent = callDuration(call);
  q(".media").textContent = mediaText(call);
  q(".health").textContent = healthText(call);
  if (call.state === "ended") {
    q(".ended-at").textContent = call.ended_at ? new Date(call.ended_at).toLocaleTimeString() : "—";
    const totals = call.levels ? `${(call.levels.inbound.talk_total || 0).toFixed(0)} s / ${(call.levels.outbound.talk_total || 0).toFixed(0)} s` : "—";
    q(".talk-totals").textContent = totals;
    q(".overtalk-total").textContent = `${(call.overtalk_total || 0).toFixed(1)} s`;
    return;
  }
  for (const [leg, cls] of [["inbound", "in"], ["outbound", "out"]]) {
    const value = levelOf(call, leg);
    q(`.lvl-${cls}`).value = value;
    q(`.db-${cls}`).textContent = call.levels ? `${value.toFixed(0)} dB` : "";
  }
  const talking = talkers(call).map((leg) => LEG_NAMES[leg]);
  const cell = q(".talking");
  cell.textContent = talking.length ? talking.join(" + ") + " talking" : (call.state === "ringing" ? "ringing" : "silence");
  row.classList.toggle("overtalk", Boolean(call.overtalk));
  if (call.overtalk) cell.append(el("strong", { class: "overtalk-flag", text: " ⚠ over-talk" }));
}

function upsert(call) {
  const id = call.call_control_id;
  let entry = rows.get(id);
  const ended = call.state === "ended";
  if (entry && entry.ended !== ended) {
    entry.row.remove();
    entry = undefined;
  }
  if (!entry) {
    entry = { row: ended ? recentRow(call) : activeRow(call), call, ended };
    rows.set(id, entry);
    if (ended) recentBody.prepend(entry.row);
    else activeBody.append(entry.row);
  }
  entry.call = call;
  fill(entry);
}

function trimRecent() {
  while (recentBody.rows.length > MAX_RECENT) {
    const last = recentBody.rows[recentBody.rows.length - 1];
    rows.delete(last.dataset.call);
    last.remove();
  }
}

function counts() {
  const active = activeBody.rows.length;
  document.getElementById("active-count").textContent = `(${active})`;
  document.getElementById("no-active").hidden = active > 0;
  document.getElementById("no-recent").hidden = recentBody.rows.length > 0;
}

function applyPending() {
  const batch = pending;
  pending = [];
  for (const call of batch) upsert(call);
  trimRecent();
  counts();
}

function queue(calls) {
  if (!pending.length) requestAnimationFrame(applyPending);
  pending.push(...calls);
}

const source = new EventSource("/events/calls");
source.addEventListener("snapshot", (event) => {
  const snapshot = JSON.parse(event.data);
  rows.clear();
  activeBody.replaceChildren();
  recentBody.replaceChildren();
  pending = [];
  for (const call of [...snapshot.recent].reverse()) upsert(call);
  for (const call of snapshot.active) upsert(call);
  counts();
});
source.addEventListener("calls", (event) => queue(JSON.parse(event.data)));
source.addEventListener("open", () => { status.textContent = "Live: updates about once a second."; });
source.addEventListener("error", () => { status.textContent = "Live feed interrupted; reconnecting…"; });

setInterval(() => {
  for (const entry of rows.values()) {
    if (!entry.ended) entry.row.querySelector(".duration").textContent = callDuration(entry.call);
  }
}, 1000);
