// The text tabs: sentiment (words highlighted by contribution), streaming generation,
// translation with its attention heatmap.
import { authHeaders, answer, busy, call, errorBox, field, fmt, h } from "./app.js";

// -- sentiment ----------------------------------------------------------------------------

function highlighted(text, exp) {
  const scale = Math.max(1e-12, ...exp.scores.map(Math.abs));
  const out = h("p", { class: "explained" });
  let pos = 0;
  exp.spans.forEach(([a, b], i) => {
    if (a > pos) out.append(text.slice(pos, a));
    const s = exp.scores[i];
    const alpha = (0.12 + 0.78 * Math.abs(s) / scale).toFixed(2);
    const rgb = s >= 0 ? "var(--pos)" : "var(--neg)";
    out.append(h("span", {
      class: "tok", "data-score": s.toFixed(4), title: `${exp.tokens[i]}: ${s >= 0 ? "+" : ""}${s.toFixed(4)}`,
      style: `background: rgba(${rgb}, ${alpha})`,
      "aria-label": `${text.slice(a, b)} (${s >= 0 ? "for" : "against"} ${fmt(s, 3)})`,
    }, text.slice(a, b)));
    pos = b;
  });
  out.append(text.slice(pos));
  return out;
}

export function sentiment(panel, model) {
  const text = h("textarea", { name: "text", maxlength: model.limits.max_text_chars, required: true },
    "a gripping, funny film");
  const explain = h("input", { type: "checkbox", checked: true, name: "explain" });
  const button = h("button", { type: "submit", text: "Classify" });
  const err = errorBox();
  const result = h("div", { class: "result", "aria-live": "polite" });
  const form = h("form", {}, field("Text", text),
    h("label", { class: "inline" }, explain, "show each word's contribution"),
    h("div", { class: "actions" }, button), err, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      const r = await call(`/api/${model.name}/predict`, { text: text.value, explain: explain.checked });
      const bars = Object.entries(r.probabilities).map(([label, p]) => h("div", { class: "bar" },
        h("span", { text: label }), h("span", { class: "track" }, h("span", { class: "fill", style: `display:block;width:${(100 * p).toFixed(1)}%` })),
        h("span", { text: fmt(p) })));
      result.replaceChildren(
        h("p", {}, "Label: ", h("span", { class: "big label", text: r.label }), ` (p = ${fmt(r.probability)})`),
        ...bars,
        r.explanation ? h("h3", { text: "Why" }) : "",
        r.explanation ? highlighted(text.value, r.explanation) : "",
        r.explanation ? h("p", { class: "legend" }, h("span", { class: "tok", style: "background: rgba(var(--pos), 0.6)", text: "green" }),
          ` pushed towards ${r.label}, `, h("span", { class: "tok", style: "background: rgba(var(--neg), 0.6)", text: "red" }),
          " against it; stronger colour, larger effect") : "");
    });
  });
  panel.append(form);
}

// -- text generation (server-sent events over fetch, so a bearer token can be sent) -----------

async function* sseEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message", data = "";
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      yield { event, data: data ? JSON.parse(data) : {} };
    }
  }
}

export function textgen(panel, model) {
  const vocab = model.info.vocabulary || "";
  const first = vocab.match(/[A-Za-z]/) ? (vocab.match(/[A-Z]/) ? vocab.match(/[A-Z]/)[0] : vocab.match(/[a-z]/)[0]) : vocab[0] || "";
  const prompt = h("textarea", { name: "prompt", maxlength: model.limits.max_text_chars, required: true }, first);
  const length = h("input", { type: "number", name: "length", min: 1, max: model.limits.max_generate_chars, value: 300 });
  const temp = h("input", { type: "range", name: "temperature", min: 0, max: 2, step: 0.05, value: 0.8 });
  const tempOut = h("output", { for: "", text: "0.80" });
  temp.addEventListener("input", () => { tempOut.textContent = Number(temp.value).toFixed(2); });
  const topk = h("input", { type: "number", name: "top_k", min: 0, value: 0 });
  const seed = h("input", { type: "number", name: "seed", placeholder: "random" });
  const button = h("button", { type: "submit", text: "Generate" });
  const stop = h("button", { type: "button", class: "secondary", text: "Stop", disabled: true });
  const err = errorBox();
  const out = h("pre", { class: "generated", "aria-live": "off" });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  let controller = null;
  stop.addEventListener("click", () => controller && controller.abort());
  const form = h("form", {}, field("Prompt", prompt, vocab ? `characters the model knows: ${vocab.replace(/\n/g, "⏎")}` : ""),
    h("div", { class: "row" }, field("Length (characters)", length),
      h("div", { class: "grow" }, h("label", { for: "" }, "Temperature ", tempOut), temp),
      field("Top-k (0: all)", topk), field("Seed", seed)),
    h("div", { class: "actions" }, button, stop), err, h("div", { class: "result" }, out), status);
  temp.id = `temp-${model.name}`;
  form.querySelector(".grow label").setAttribute("for", temp.id);
  tempOut.setAttribute("for", temp.id);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    controller = new AbortController();
    stop.disabled = false;
    busy(button, err, async () => {
      const body = { prompt: prompt.value, length: Number(length.value), temperature: Number(temp.value),
        top_k: Number(topk.value || 0), stream: true };
      if (seed.value !== "") body.seed = Number(seed.value);
      const res = await fetch(`/api/${model.name}/generate`, {
        method: "POST", headers: authHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify(body), signal: controller.signal,
      });
      if (!res.ok) await answer(res);
      const gen = document.createTextNode("");
      out.replaceChildren(h("b", { text: prompt.value }), gen);
      out.setAttribute("aria-busy", "true");
      status.textContent = "generating…";
      let n = 0;
      try {
        for await (const { event, data } of sseEvents(res)) {
          if (event === "error") throw new Error(data.detail);
          if (event === "done") {
            status.textContent = `done: ${data.generated.length} characters in ${fmt(data.seconds, 2)} s`;
          } else {
            gen.appendData(data.token);
            if (++n % 25 === 0) status.textContent = `generating… ${n} characters`;
          }
        }
      } catch (e) {
        if (e.name === "AbortError") status.textContent = `stopped after ${n} characters`;
        else throw e;
      } finally {
        out.removeAttribute("aria-busy");
      }
    }).finally(() => { stop.disabled = true; });
  });
  panel.append(form);
}

// -- translation ----------------------------------------------------------------------------

// Subword tokens carry their leading space; show them without it (␣ for a bare space).
const shown = (t) => t.trim() || "␣";

function heatmap(src, tgt, weights) {
  const cell = (w) => h("td", { style: `background: rgba(36, 86, 199, ${w.toFixed(3)}); color: ${w > 0.55 ? "#fff" : "#1d2330"}`,
    title: fmt(w, 3) }, Math.round(100 * w));
  return h("table", { class: "heatmap", "aria-label": "attention: rows are translation tokens, columns source tokens, values in percent" },
    h("thead", {}, h("tr", {}, h("td"), src.map((s) => h("th", { scope: "col", title: JSON.stringify(s), text: shown(s) })))),
    h("tbody", {}, tgt.map((t, i) => h("tr", {}, h("th", { scope: "row", title: JSON.stringify(t), text: shown(t) }), weights[i].map(cell)))));
}

export function translate(panel, model) {
  const text = h("input", { type: "text", name: "text", maxlength: model.limits.max_text_chars, required: true, placeholder: "a sentence in the source language" });
  const beam = h("input", { type: "number", name: "beam", min: 1, max: model.limits.max_beam, value: model.info.beam || 1 });
  const button = h("button", { type: "submit", text: "Translate" });
  const err = errorBox();
  const result = h("div", { class: "result", "aria-live": "polite" });
  const form = h("form", {}, h("div", { class: "row" }, h("div", { class: "grow" }, field("Sentence", text)), field("Beam size", beam)),
    h("div", { class: "actions" }, button), err, result);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      const r = await call(`/api/${model.name}/translate`, { text: text.value, beam: Number(beam.value), attention: true });
      result.replaceChildren(h("p", { class: "big translation", text: r.translation || "(empty)" }),
        h("h3", { text: "Attention (where the decoder looked while writing each token)" }),
        heatmap(r.source_tokens, r.target_tokens, r.attention));
    });
  });
  panel.append(form);
}
