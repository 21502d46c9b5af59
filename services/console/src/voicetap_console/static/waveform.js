// The recording drawn: each channel's waveform (caller above, agent below) and a timeline of
// talk, silence and over-talk computed from the audio itself, with pauses marked.
const FRAME_S = 0.1;
const TALK_DBFS = -42;
let duration = 0;
let base = null;

function rmsDb(samples, from, to) {
  let sum = 0;
  for (let i = from; i < to; i++) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / Math.max(1, to - from));
  return rms > 0 ? 20 * Math.log10(rms) : -120;
}

function hatch(ctx, color) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  t.strokeStyle = color;
  t.lineWidth = 2;
  t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.stroke();
  return ctx.createPattern(tile, "repeat");
}

export async function drawRecording(url, info, onSeek) {
  const wave = document.getElementById("waveform");
  const line = document.getElementById("timeline");
  const head = await fetch(url, { method: "GET", headers: { range: "bytes=0-43" } });
  const size = Number((head.headers.get("content-range") || "/0").split("/")[1]);
  if (!size || size > 64 * 1024 * 1024) return; // too long to draw in the page
  const buffer = await (await fetch(url)).arrayBuffer();
  const audio = await new OfflineAudioContext(2, 1, 8000).decodeAudioData(buffer);
  duration = audio.duration;
  const channels = [audio.getChannelData(0), audio.getChannelData(audio.numberOfChannels > 1 ? 1 : 0)];
  const ctx = wave.getContext("2d");
  const w = wave.width, h = wave.height, half = h / 2;
  ctx.clearRect(0, 0, w, h);
  const colors = ["#1f5fa8", "#a8521f"];
  channels.forEach((data, c) => {
    const per = Math.max(1, Math.floor(data.length / w));
    ctx.fillStyle = colors[c];
    for (let x = 0; x < w; x++) {
      let lo = 1, hi = -1;
      for (let i = x * per; i < Math.min(data.length, (x + 1) * per); i++) { const v = data[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      const mid = c * half + half / 2;
      ctx.fillRect(x, mid - Math.max(0.5, hi * half / 2), 1, Math.max(1, (hi - lo) * half / 2));
    }
  });
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  ctx.fillText("L · caller", 4, 14);
  ctx.fillText("R · agent", 4, half + 14);
  base = ctx.getImageData(0, 0, w, h);

  const tl = line.getContext("2d");
  const lw = line.width, lh = line.height;
  tl.clearRect(0, 0, lw, lh);
  const frame = Math.floor(audio.sampleRate * FRAME_S);
  const frames = Math.ceil(channels[0].length / frame);
  const over = hatch(tl, "#b00020");
  for (let f = 0; f < frames; f++) {
    const from = f * frame, to = Math.min(channels[0].length, from + frame);
    const talk = channels.map((d) => rmsDb(d, from, to) > TALK_DBFS);
    const x = (f / frames) * lw, fw = Math.max(1, lw / frames);
    if (talk[0]) { tl.fillStyle = colors[0]; tl.fillRect(x, 0, fw, lh / 3); }
    if (talk[1]) { tl.fillStyle = colors[1]; tl.fillRect(x, (2 * lh) / 3, fw, lh / 3); }
    if (talk[0] && talk[1]) { tl.fillStyle = over; tl.fillRect(x, lh / 3, fw, lh / 3); }
  }
  const paused = hatch(tl, "#666");
  for (const [a, b] of ((info && info.paused) || []).filter(([a, b]) => b - a >= 0.05)) {
    tl.fillStyle = paused;
    tl.fillRect((a / duration) * lw, 0, Math.max(2, ((b - a) / duration) * lw), lh);
  }
  for (const canvas of [wave, line]) {
    canvas.addEventListener("click", (e) => {
      const rect = canvas.getBoundingClientRect();
      onSeek(((e.clientX - rect.left) / rect.width) * duration);
    });
  }
}

export function drawPlayhead(t, total) {
  const wave = document.getElementById("waveform");
  if (!base || !total) return;
  const ctx = wave.getContext("2d");
  ctx.putImageData(base, 0, 0);
  const x = (t / total) * wave.width;
  ctx.fillStyle = "#000";
  ctx.fillRect(x, 0, 2, wave.height);
}
