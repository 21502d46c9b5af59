// One call: live levels and transcript while it runs; recording, waveform, timeline and
// click-to-seek transcript once it has ended.
import { LEG_NAMES, callDuration, el, levelOf, mediaText, preciseClock, talkers } from "./common.js";
import { drawRecording, drawPlayhead } from "./waveform.js";

const data = JSON.parse(document.getElementById("call-data").textContent);
const id = data.call_control_id;
const player = document.getElementById("player");
const list = document.getElementById("transcript");
const lines = new Map(); // event id -> { seg, li }
const partials = new Map(); // track -> li
let call = data.call;
let recordingShown = false;
let recordingInfo = null;
let playing = null;

function speaker(track) {
  return LEG_NAMES[track] || "Speaker";
}

function lineItem(seg, partial) {
  const button = el("button", {
    type: "button", class: "line", "data-start": seg.start, "data-id": seg.id,
    "aria-label": `${speaker(seg.track)} at ${preciseClock(seg.start)}: ${seg.text}. Play from here.`,
  },
  el("span", { class: "time", text: preciseClock(seg.start) }),
  el("span", { class: `who who-${seg.track || "none"}`, text: speaker(seg.track) }),
  el("span", { class: "text", text: seg.text }));
  if (partial) button.append(el("em", { class: "partial-tag", text: " (speaking…)" }));
  button.addEventListener("click", () => seek(seg.start, true));
  return el("li", { class: partial ? "partial" : "final", "data-track": seg.track || "" }, button);
}

function addSegment(seg) {
  if (lines.has(seg.id)) return;
  const old = partials.get(seg.track || "");
  if (old) { old.remove(); partials.delete(seg.track || ""); }
  const li = lineItem(seg, false);
  lines.set(seg.id, { seg, li });
  list.append(li);
  document.getElementById("no-lines").hidden = true;
}

function setPartial(seg) {
  if (lines.has(seg.id)) return;
  const track = seg.track || "";
  const li = lineItem(seg, true);
  const old = partials.get(track);
  if (old) old.replaceWith(li); else list.append(li);
  partials.set(track, li);
  document.getElementById("no-lines").hidden = true;
}

function renderAll(transcript, withPartials) {
  lines.clear();
  partials.clear();
  list.replaceChildren();
  const segments = [...transcript.segments].sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
  for (const seg of segments) addSegment(seg);
  if (withPartials) for (const seg of transcript.partials) setPartial(seg);
  document.getElementById("no-lines").hidden = lines.size > 0 || partials.size > 0;
}

async function loadTranscript(withPartials) {
  const response = await fetch(`/calls/${encodeURIComponent(id)}/transcript.json`);
  if (!response.ok) return;
  const transcript = await response.json();
  // Keep the lines that came live while the snapshot was read.
  const live = [...lines.values()].map((l) => l.seg).filter((s) => !transcript.segments.some((t) => t.id === s.id));
  renderAll({ segments: [...transcript.segments, ...live], partials: transcript.partials }, withPartials);
}

function seek(start, play) {
  if (!recordingShown) return;
  const go = () => {
    player.currentTime = Number(start);
    if (play) player.play().catch(() => {});
  };
  if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
}

function highlight() {
  const t = player.currentTime;
  let current = null;
  for (const { seg, li } of lines.values()) {
    if (seg.start <= t + 0.05 && (!current || seg.start >= current.seg.start)) current = { seg, li };
  }
  if (current && current.li !== playing) {
    if (playing) { playing.classList.remove("playing"); playing.querySelector("button").removeAttribute("aria-current"); }
    playing = current.li;
    playing.classList.add("playing");
    playing.querySelector("button").setAttribute("aria-current", "true");
  }
  drawPlayhead(t, player.duration);
}

function facts(c) {
  const set = (key, text) => { document.getElementById(key).textContent = text || "—"; };
  set("f-from", c.from);
  set("f-to", c.to);
  set("f-direction", c.direction);
  set("f-state", c.state);
  set("f-duration", callDuration(c));
  set("f-media", mediaText(c));
}

function applyCall(c) {
  if (!c) return;
  call = c;
  facts(c);
  const live = c.state !== "ended";
  document.getElementById("live").hidden = !live;
  if (live) {
    for (const leg of ["inbound", "outbound"]) {
      document.getElementById(`lvl-${leg}`).value = levelOf(c, leg);
      document.getElementById(`talk-${leg}`).textContent = talkers(c).includes(leg) ? `${LEG_NAMES[leg]} talking` : "";
    }
    document.getElementById("overtalk").hidden = !c.overtalk;
  }
  if (c.recording) recordingInfo = c.recording;
  if (!live && (c.recording || !recordingShown)) showRecording();
}

function statsTable() {
  const box = document.getElementById("stats");
  box.replaceChildren();
  const rec = recordingInfo || {};
  const rows = [];
  for (const leg of ["inbound", "outbound"]) {
    const s = (rec.legs || {})[leg];
    if (!s) continue;
    const total = (s.received || 0) + (s.lost || 0);
    rows.push([LEG_NAMES[leg], s.codec, s.received, s.lost, total ? (100 * s.lost / total).toFixed(2) + "%" : "0%",
      Number(s.jitter_ms || 0).toFixed(1) + " ms", s.duplicated, s.reordered]);
  }
  if (rows.length) {
    const head = el("tr", {}, ...["Leg", "Codec", "Packets", "Lost", "Loss", "Jitter", "Duplicated", "Reordered"].map((h) => el("th", { scope: "col", text: h })));
    const body = rows.map((r) => el("tr", {}, ...r.map((v, i) => el(i ? "td" : "th", i ? { text: String(v ?? "—") } : { scope: "row", text: String(v) }))));
    box.append(el("h3", { text: "Call quality (media_ingest)" }), el("table", { class: "stats-table" }, el("thead", {}, head), el("tbody", {}, ...body)));
  }
  const facts = [];
  if (rec.duration !== undefined) facts.push(["Recording", `${Number(rec.duration).toFixed(1)} s, ${rec.codec || "no media"}, ${rec.sample_rate} Hz`]);
  if (rec.analytics) facts.push(["Talk / silence / over-talk", talkText(rec.analytics)]);
  const pauses = (rec.paused || []).filter(([a, b]) => b - a >= 0.05);
  if (pauses.length) facts.push(["Paused (PCI) / gaps", pauses.map(([a, b]) => `${preciseClock(a)}–${preciseClock(b)}`).join(", ")]);
  if (rec.recovered) facts.push(["Failover", "the recording was recovered after its instance stopped"]);
  const q = call && call.quality;
  if (q) facts.push(["Telnyx quality", flat(q)]);
  if (call && call.hangup_cause) facts.push(["Hang-up", call.hangup_cause]);
  if (facts.length) box.append(el("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])));
}

function talkText(a) {
  const leg = (name) => a[name] ? `${LEG_NAMES[name]} talks ${Number(a[name].talk || 0).toFixed(1)} s, silent ${Number(a[name].silence || 0).toFixed(1)} s` : "";
  return [leg("inbound"), leg("outbound"), `over-talk ${Number(a.overtalk || 0).toFixed(1)} s`].filter(Boolean).join("; ");
}

function flat(value, path = []) {
  if (value === null || typeof value !== "object") return `${path.join(" ")} ${value}`;
  return Object.entries(value).map(([k, v]) => flat(v, [...path, k])).join(", ");
}

async function showRecording() {
  const first = !recordingShown;
  recordingShown = true;
  document.getElementById("recording").hidden = false;
  document.getElementById("live").hidden = true;
  statsTable();
  if (!first) return;
  player.src = `/recordings/${encodeURIComponent(id)}.wav`;
  await loadTranscript(false); // placed again, now on the recording's final timeline
  if (data.seek) seek(data.seek, false);
  drawRecording(player.src, recordingInfo, (t) => seek(t, true)).catch(() => {});
}

player.addEventListener("timeupdate", highlight);
player.addEventListener("seeked", highlight);

const source = new EventSource(`/events/calls/${encodeURIComponent(id)}`);
source.addEventListener("snapshot", (event) => applyCall(JSON.parse(event.data).call));
source.addEventListener("call", (event) => applyCall(JSON.parse(event.data)));
source.addEventListener("segment", (event) => addSegment(JSON.parse(event.data)));
source.addEventListener("partial", (event) => setPartial(JSON.parse(event.data)));

const ended = (call && call.state === "ended") || (!call && data.stored && (data.stored.ended_at || data.stored.completed_at));
if (ended) showRecording(); else loadTranscript(true);
setInterval(() => { if (call) document.getElementById("f-duration").textContent = callDuration(call); }, 1000);
