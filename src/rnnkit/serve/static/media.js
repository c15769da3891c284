// The media tabs: speech (a file or the microphone) and forecast (an interactive SVG plot).
import { busy, call, errorBox, field, fmt, h, showError } from "./app.js";

// -- speech ----------------------------------------------------------------------------------

/** 16-bit PCM mono WAV of Float32 samples: what the server reads without ffmpeg. */
export function encodeWav(samples, rate) {
  const buf = new ArrayBuffer(44 + 2 * samples.length);
  const v = new DataView(buf);
  const str = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * samples.length, true); str(8, "WAVE");
  str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, 2 * samples.length, true);
  samples.forEach((s, i) => v.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, s)) * 0x7fff, true));
  return new Blob([buf], { type: "audio/wav" });
}

/** What MediaRecorder recorded (webm/ogg) as mono PCM at `rate`, decoded by the browser. */
async function toWav(blob, rate) {
  const ctx = new AudioContext();
  try {
    const audio = await ctx.decodeAudioData(await blob.arrayBuffer());
    const frames = Math.max(1, Math.ceil(audio.duration * rate));
    const offline = new OfflineAudioContext(1, frames, rate); // mixes down and resamples
    const src = offline.createBufferSource();
    src.buffer = audio;
    src.connect(offline.destination);
    src.start();
    return encodeWav((await offline.startRendering()).getChannelData(0), rate);
  } finally {
    ctx.close();
  }
}

function transcript(r) {
  const timeline = h("div", { class: "timeline", "aria-hidden": "true" },
    r.words.map((w) => h("span", {
      style: `left:${(100 * w.start / Math.max(r.seconds, 1e-9)).toFixed(2)}%;width:${(100 * (w.end - w.start) / Math.max(r.seconds, 1e-9)).toFixed(2)}%`,
      title: `${w.word}: ${fmt(w.start, 2)}–${fmt(w.end, 2)} s`, text: w.word,
    })));
  return [
    h("p", { class: "big transcript", text: r.text || "(nothing recognised)" }),
    h("p", { class: "muted", text: `${fmt(r.seconds, 2)} s of audio · beam ${r.beam}` }),
    r.words.length ? timeline : "",
    r.words.length ? h("table", { class: "list words" },
      h("thead", {}, h("tr", {}, h("th", { text: "word" }), h("th", { text: "start (s)" }), h("th", { text: "end (s)" }))),
      h("tbody", {}, r.words.map((w) => h("tr", {}, h("td", { text: w.word }), h("td", { text: fmt(w.start, 2) }), h("td", { text: fmt(w.end, 2) }))))) : "",
  ];
}

export function speech(panel, model) {
  const rate = model.info.sample_rate || 16000;
  const file = h("input", { type: "file", name: "file", accept: "audio/wav,audio/x-wav,audio/flac,audio/ogg,.wav,.flac,.ogg" });
  const beam = h("input", { type: "number", name: "beam", min: 1, max: model.limits.max_beam, value: 1 });
  const send = h("button", { type: "submit", text: "Transcribe file" });
  const record = h("button", { type: "button", class: "secondary", text: "Record from microphone", "aria-pressed": "false" });
  const player = h("audio", { controls: true, hidden: true });
  const err = errorBox();
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const result = h("div", { class: "result", "aria-live": "polite" });

  async function transcribe(blob, name, button) {
    await busy(button, err, async () => {
      player.src = URL.createObjectURL(blob);
      player.hidden = false;
      const form = new FormData();
      form.append("file", blob, name);
      form.append("beam", beam.value || "1");
      status.textContent = "transcribing…";
      try {
        result.replaceChildren(...transcript(await call(`/api/${model.name}/transcribe`, form)));
      } finally {
        status.textContent = "";
      }
    });
  }

  let recorder = null;
  record.addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    err.hidden = true;
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      showError(err, new Error("this browser cannot record here (it needs https or localhost, and MediaRecorder)"));
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showError(err, new Error(`no microphone: ${e.message || e.name}`));
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (ev) => ev.data.size && chunks.push(ev.data));
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      record.textContent = "Record from microphone";
      record.classList.remove("rec");
      record.setAttribute("aria-pressed", "false");
      try {
        const wav = await toWav(new Blob(chunks, { type: chunks[0] ? chunks[0].type : "audio/webm" }), rate);
        await transcribe(wav, "microphone.wav", record);
      } catch (e) {
        showError(err, new Error(`could not read the recording: ${e.message || e}`));
      }
    });
    recorder.start();
    record.textContent = "Stop and transcribe";
    record.classList.add("rec");
    record.setAttribute("aria-pressed", "true");
    status.textContent = "recording… press again to stop";
  });

  const form = h("form", {}, h("div", { class: "row" }, h("div", { class: "grow" }, field("Recording (WAV, FLAC or OGG)", file)), field("Beam size", beam)),
    h("div", { class: "actions" }, send, record), player, status, err, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!file.files.length) { showError(err, new Error("choose a recording first")); return; }
    transcribe(file.files[0], file.files[0].name, send);
  });
  panel.append(form);
}

// -- forecast ------------------------------------------------------------------------------------

const PAD = { l: 52, r: 12, t: 12, b: 28 };
const NS = "http://www.w3.org/2000/svg";
const s = (tag, attrs = {}) => { const el = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); return el; };

function niceTicks(lo, hi, n = 5) {
  const step0 = (hi - lo) / n || 1, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= step0);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** History, forecast and interval of one series as an SVG; arrow keys or the pointer move a cursor. */
function plot(r, name, readout, width) {
  const W = Math.max(300, Math.round(width || 720)), H = W < 560 ? 220 : 300; // text stays legible
  const hist = r.history.values[name] || [], hIdx = r.history.index;
  const f = r.forecast.values[name], fIdx = r.forecast.index;
  const n = hist.length, m = f.forecast.length, total = n + m;
  const all = [...hist, ...f.forecast, ...f.lower, ...f.upper].filter((v) => v !== null && Number.isFinite(v));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = 0.05 * (hi - lo); lo -= pad; hi += pad;
  const x = (i) => PAD.l + (W - PAD.l - PAD.r) * (total > 1 ? i / (total - 1) : 0.5);
  const y = (v) => PAD.t + (H - PAD.t - PAD.b) * (1 - (v - lo) / (hi - lo));
  const line = (vals, off) => vals.map((v, i) => (v === null ? null : `${x(i + off).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(" ");
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, tabindex: "0", role: "img",
    "aria-label": `${name}: ${n} steps of history and a ${m}-step forecast${r.level ? ` with a ${Math.round(100 * r.level)}% interval` : ""}; use the arrow keys to read values` });
  for (const t of niceTicks(lo, hi)) {
    svg.append(s("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: y(t), y2: y(t), "stroke-opacity": 0.3 }));
    const label = s("text", { x: PAD.l - 6, y: y(t) + 4, "text-anchor": "end" }); label.textContent = +t.toPrecision(4); svg.append(label);
  }
  const labels = [...hIdx, ...fIdx];
  for (const i of [0, n - 1, total - 1].filter((v, k, a) => v >= 0 && a.indexOf(v) === k)) {
    const t = s("text", { x: x(i), y: H - 8, "text-anchor": i === 0 ? "start" : i === total - 1 ? "end" : "middle" });
    t.textContent = String(labels[i]).replace("T00:00:00", ""); svg.append(t);
  }
  const band = f.lower.every((v) => v !== null) && f.upper.every((v) => v !== null);
  if (band) {
    const up = f.upper.map((v, i) => `${x(n + i).toFixed(1)},${y(v).toFixed(1)}`);
    const down = f.lower.map((v, i) => `${x(n + i).toFixed(1)},${y(v).toFixed(1)}`).reverse();
    svg.append(s("polygon", { class: "band", points: [...up, ...down].join(" ") }));
  }
  if (n) svg.append(s("polyline", { class: "hist", points: line(hist, 0) }));
  const joined = n ? [hist[n - 1], ...f.forecast] : f.forecast;
  svg.append(s("polyline", { class: "fc", points: line(joined, n ? n - 1 : 0) }));
  const cursor = s("line", { class: "cursor", y1: PAD.t, y2: H - PAD.b, visibility: "hidden" });
  const dot = s("circle", { class: "dot", r: 4, visibility: "hidden" });
  svg.append(cursor, dot);
  let at = total - 1;
  function show(i) {
    at = Math.max(0, Math.min(total - 1, i));
    const isF = at >= n, k = at - n, v = isF ? f.forecast[k] : hist[at];
    cursor.setAttribute("x1", x(at)); cursor.setAttribute("x2", x(at)); cursor.setAttribute("visibility", "visible");
    if (v !== null) { dot.setAttribute("cx", x(at)); dot.setAttribute("cy", y(v)); dot.setAttribute("visibility", "visible"); }
    readout.textContent = isF
      ? `${labels[at]} forecast ${fmt(v)}${band ? ` [${fmt(f.lower[k])}, ${fmt(f.upper[k])}]` : ""} (step ${k + 1})`
      : `${labels[at]} history ${fmt(v)}`;
  }
  svg.addEventListener("pointermove", (ev) => {
    const box = svg.getBoundingClientRect();
    const px = (ev.clientX - box.left) * (W / box.width);
    show(Math.round(((px - PAD.l) / (W - PAD.l - PAD.r)) * (total - 1)));
  });
  svg.addEventListener("keydown", (ev) => {
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: total - 1 }[ev.key];
    if (to !== undefined) { ev.preventDefault(); show(to); }
  });
  svg.addEventListener("focus", () => show(at));
  return svg;
}

function forecastTable(r, name) {
  const f = r.forecast.values[name];
  return h("details", {}, h("summary", { text: "forecast table" }), h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["time", "forecast", "lower", "upper"].map((t) => h("th", { text: t })))),
    h("tbody", {}, r.forecast.index.map((t, i) => h("tr", {}, h("td", { text: t }), h("td", { text: fmt(f.forecast[i]) }),
      h("td", { text: fmt(f.lower[i]) }), h("td", { text: fmt(f.upper[i]) }))))));
}

export function forecast(panel, model) {
  const info = model.info;
  const horizon = h("input", { type: "number", name: "horizon", min: 1, max: info.max_horizon, value: info.horizon });
  const values = h("textarea", { name: "series", placeholder: `values separated by commas, spaces or new lines (at least ${info.lookback + 1}); empty: the end of the training data` });
  const file = h("input", { type: "file", name: "file", accept: ".csv,text/csv" });
  const own = h("button", { type: "submit", text: "Forecast" });
  const csv = h("button", { type: "button", class: "secondary", text: "Forecast from CSV" });
  const err = errorBox();
  const result = h("div", { class: "result" });
  const readout = h("p", { class: "readout", "aria-live": "polite" });

  function show(r) {
    readout.textContent = "";
    const pick = h("select", { "aria-label": "series to plot" }, r.series.map((n) => h("option", { value: n, text: n })));
    const box = h("div", { class: "plot" });
    const legend = h("p", { class: "legend" }, h("span", { class: "key hist-key" }), " history ",
      h("span", { class: "key fc-key" }, ""), " forecast ", r.level ? h("span", { class: "key band-key" }) : "",
      r.level ? ` ${Math.round(100 * r.level)}% interval` : "");
    const draw = () => {
      box.replaceChildren();
      box.append(plot(r, pick.value, readout, box.clientWidth), legend, forecastTable(r, pick.value));
    };
    pick.addEventListener("change", draw);
    let drawnAt = 0;
    new ResizeObserver(() => { // redraw when the width changes (a phone turned sideways)
      if (box.clientWidth && Math.abs(box.clientWidth - drawnAt) > 40) { drawnAt = box.clientWidth; draw(); }
    }).observe(box);
    result.replaceChildren(r.series.length > 1 ? field("Series", pick) : "",
      h("p", { class: "muted", text: `${r.horizon}-step forecast; move the pointer over the plot, or focus it and use ← → to read the values` }),
      box, readout);
    draw();
  }

  const form = h("form", {},
    h("div", { class: "row" }, field(`Horizon (at most ${info.max_horizon})`, horizon), h("div", { class: "grow" }, field("CSV file of history", file))),
    field(`History of ${info.series.join(", ")}`, values),
    h("div", { class: "actions" }, own, csv), err, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(own, err, async () => {
      const text = values.value.trim();
      const series = text ? text.split(/[\s,;]+/).filter(Boolean).map((t) => {
        const v = Number(t);
        if (!Number.isFinite(v)) throw new Error(`'${t}' is not a number`);
        return v;
      }) : null;
      show(await call(`/api/${model.name}/forecast`, { series, horizon: Number(horizon.value) }));
    });
  });
  csv.addEventListener("click", () => {
    if (!file.files.length) { showError(err, new Error("choose a CSV file first")); return; }
    busy(csv, err, async () => {
      const body = new FormData();
      body.append("file", file.files[0], file.files[0].name);
      body.append("horizon", horizon.value);
      show(await call(`/api/${model.name}/forecast/csv`, body));
    });
  });
  panel.append(form);
}
