// The nmt page: sends the source lines to POST /translate and shows the
// translations, the n-best list of the chosen line and the attention heatmap
// of the chosen hypothesis.  Plain DOM code, no libraries, no build step.
"use strict";

const OPTIONS = {
  greedy: [],
  beam: ["beam_size", "n_best", "length_penalty"],
  sample: ["n_best", "length_penalty", "temperature", "top_k", "top_p", "seed"],
};
const INTEGERS = new Set(["beam_size", "n_best", "top_k", "seed"]);
const view = { results: [], line: 0, hyp: 0, defaults: null };

function $(id) { return document.getElementById(id); }

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function formatScore(score) {
  return score === null ? "no hypothesis" : score.toFixed(3);
}

async function loadInfo() {
  try {
    const response = await fetch("/info");
    const info = await response.json();
    view.defaults = info.decoding.strategies;
    $("strategy").value = info.decoding.default;
    fillDefaults();
    $("model-info").textContent = describeModel(info);
  } catch (err) {
    $("model-info").textContent = "could not read /info: " + err;
  }
}

function describeModel(info) {
  const parts = [info.architecture];
  if (info.languages.src) parts.push(info.languages.src + " \u2192 " + info.languages.tgt);
  parts.push(info.parameters.toLocaleString("en") + " parameters");
  if (info.step !== null) parts.push("step " + info.step + ", epoch " + info.epoch);
  if (typeof info.val.bleu === "number") parts.push("val BLEU " + info.val.bleu.toFixed(2));
  for (const [split, scores] of Object.entries(info.test)) {
    if (typeof scores.bleu === "number") parts.push(split + " BLEU " + scores.bleu.toFixed(2));
  }
  return parts.join(" \u00b7 ");
}

function fillDefaults() {
  const strategy = $("strategy").value;
  const values = view.defaults ? view.defaults[strategy] : {};
  for (const label of document.querySelectorAll("#options label[data-for]")) {
    label.hidden = !label.dataset.for.split(" ").includes(strategy);
  }
  for (const key of OPTIONS[strategy]) {
    if (values[key] !== undefined) $(key).value = values[key];
  }
}

function requestBody() {
  const lines = $("source").value.replace(/\r/g, "").split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  const strategy = $("strategy").value;
  const body = { text: lines, strategy: strategy, attention: true };
  for (const key of OPTIONS[strategy]) {
    const raw = $(key).value.trim();
    if (raw === "") continue;
    const number = Number(raw);
    const valid = INTEGERS.has(key) ? Number.isInteger(number) : Number.isFinite(number);
    body[key] = valid ? number : raw; // not a number: sent as typed, the server names the problem
  }
  return body;
}

async function translate() {
  const button = $("translate");
  button.disabled = true;
  showError("");
  $("status").textContent = "translating...";
  const started = performance.now();
  try {
    const response = await fetch("/translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody()),
    });
    const data = await response.json();
    if (!response.ok) {
      showError(data.error || "HTTP " + response.status);
      $("status").textContent = "";
      return;
    }
    view.results = data.translations;
    view.line = 0;
    view.hyp = 0;
    render();
    $("status").textContent = "done in " + Math.round(performance.now() - started) + " ms";
  } catch (err) {
    showError("request failed: " + err);
    $("status").textContent = "";
  } finally {
    button.disabled = false;
    const output = $("output");
    output.dataset.translated = String(Number(output.dataset.translated) + 1);
  }
}

function render() {
  renderLines();
  const result = view.results[view.line];
  $("details").hidden = !result;
  if (!result) return;
  renderNbest(result);
  renderHeatmap(result.src_tokens || [], result.nbest[view.hyp]);
}

function renderLines() {
  const list = $("lines");
  list.replaceChildren();
  view.results.forEach((result, index) => {
    const item = element("li", index === view.line ? "chosen" : "");
    if (view.results.length > 1) item.append(element("span", "line-source", result.source));
    item.append(element("span", "translation", result.translation));
    item.addEventListener("click", () => { view.line = index; view.hyp = 0; render(); });
    list.append(item);
  });
}

function renderNbest(result) {
  const list = $("nbest");
  list.replaceChildren();
  result.nbest.forEach((hyp, index) => {
    const item = element("li", index === view.hyp ? "chosen" : "");
    item.append(element("span", "hyp-text", hyp.text), element("span", "score", formatScore(hyp.score)));
    item.addEventListener("click", () => { view.hyp = index; render(); });
    list.append(item);
  });
}

function renderHeatmap(srcTokens, hyp) {
  const table = $("heatmap");
  table.replaceChildren();
  const tokens = (hyp && hyp.tokens) || [];
  table.dataset.rows = String(hyp && hyp.attention ? tokens.length : 0);
  table.dataset.cols = String(hyp && hyp.attention ? srcTokens.length : 0);
  if (!hyp || !hyp.attention) {
    $("heatmap-note").textContent = tokens.length ? "This model has no attention." : "No output tokens.";
    return;
  }
  $("heatmap-note").textContent =
    "Rows: output tokens; columns: source tokens as the model read them; darker = more attention.";
  const head = element("thead");
  const top = element("tr");
  top.append(element("th"));
  for (const token of srcTokens) top.append(element("th", "src-token", token));
  head.append(top);
  const body = element("tbody");
  tokens.forEach((token, row) => {
    const tr = element("tr");
    tr.append(element("th", "tgt-token", token));
    hyp.attention[row].forEach((weight, col) => {
      const cell = element("td", "cell");
      cell.style.backgroundColor = "rgba(36, 89, 199, " + weight.toFixed(3) + ")";
      cell.title = token + " \u2190 " + srcTokens[col] + ": " + weight.toFixed(3);
      tr.append(cell);
    });
    body.append(tr);
  });
  table.append(head, body);
}

document.addEventListener("DOMContentLoaded", () => {
  $("strategy").addEventListener("change", fillDefaults);
  $("translate").addEventListener("click", translate);
  $("source").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) translate();
  });
  loadInfo();
});
