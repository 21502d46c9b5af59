// Formatting shared by the pages: durations, levels, legs, media and health as text.

export const LEG_NAMES = { inbound: "Caller", outbound: "Agent" };

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}

export function preciseClock(seconds) {
  const m = Math.floor(seconds / 60), s = seconds - m * 60;
  return m + ":" + s.toFixed(1).padStart(4, "0");
}

export function callDuration(call, now = Date.now()) {
  const from = Date.parse(call.answered_at || call.initiated_at || "");
  if (Number.isNaN(from)) return "—";
  const to = call.ended_at ? Date.parse(call.ended_at) : now;
  return clock((to - from) / 1000);
}

export function levelOf(call, leg) {
  const found = call.levels && call.levels[leg];
  return found && typeof found.rms_dbfs === "number" ? Math.max(-60, Math.min(0, found.rms_dbfs)) : -60;
}

export function talkers(call) {
  if (!call.levels) return [];
  return ["inbound", "outbound"].filter((leg) => call.levels[leg] && call.levels[leg].voice_active);
}

export function mediaText(call) {
  return call.media && call.media.length ? call.media.join(" + ") : "—";
}

export function healthText(call) {
  const h = call.health || {};
  const parts = [];
  for (const leg of ["inbound", "outbound"]) {
    if (h[leg]) parts.push(`${LEG_NAMES[leg]} loss ${h[leg].loss_pct}% jitter ${Number(h[leg].jitter_ms || 0).toFixed(1)} ms`);
  }
  if (h.errors) parts.push(`${h.errors} media error${h.errors === 1 ? "" : "s"}`);
  if (!parts.length) return call.state === "ended" ? "no stats" : (call.levels ? "ok: media flowing" : "waiting for media");
  return parts.join("; ");
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function meter(label, cls) {
  return el("meter", { class: cls, min: "-60", max: "0", low: "-45", high: "-10", optimum: "-20", value: "-60", "aria-label": label });
}
