// Small DOM and formatting helpers: elements are built, never parsed from strings,
// so merchant data (titles, reasons) can never inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// -- formatting ----------------------------------------------------------------------------

const minorDigits = new Map();

function digitsOf(currency) {
  if (!minorDigits.has(currency)) {
    let digits = 2;
    try {
      digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
        .maximumFractionDigits;
    } catch {
      /* an unknown code: two decimals */
    }
    minorDigits.set(currency, digits);
  }
  return minorDigits.get(currency);
}

// Integer minor units to text with string arithmetic only (no float rounding of money).
export function money(m) {
  if (!m) return "–";
  const digits = digitsOf(m.currency);
  const negative = m.amount < 0;
  const units = String(Math.abs(m.amount)).padStart(digits + 1, "0");
  const whole = digits ? units.slice(0, -digits) : units;
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const text = digits ? `${grouped}.${units.slice(-digits)}` : grouped;
  return `${negative ? "−" : ""}${text} ${m.currency}`;
}

export function pct(x, digits = 1) {
  if (x === null || x === undefined) return "–";
  return `${(x * 100).toFixed(digits)}%`;
}

export function signedPct(x) {
  if (x === null || x === undefined) return "–";
  return `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(1)}%`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function num(x, digits = 3) {
  if (x === null || x === undefined) return "–";
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

// -- pieces --------------------------------------------------------------------------------

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}` }, text);
}

export function statusBadge(status) {
  const kinds = { RUNNING: "ok", ACTIVE: "ok", PAUSED: "warn", DRAFT: "", STOPPED: "muted" };
  return badge(status, kinds[status.toUpperCase()] ?? "");
}

export function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : "";
  return h("p", { class: "error", role: "alert" }, `${err.message || err}${code}`);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function productImage(product) {
  const initials = (product.title || product.id).slice(0, 2).toUpperCase();
  const fallback = h("div", { class: "thumb placeholder", "aria-hidden": "true" }, initials);
  if (!product.imageUrl) return fallback;
  const img = h("img", {
    class: "thumb",
    src: product.imageUrl,
    alt: "",
    loading: "lazy",
    decoding: "async",
  });
  img.addEventListener("error", () => img.replaceWith(fallback), { once: true });
  return img;
}

// Horizontal bars, one per row: [{label, value, text?}], scaled to the largest value.
export function barChart(rows, { label, width = 320 } = {}) {
  const rowH = 22;
  const labelW = Math.round(width * 0.42);
  const barW = width - labelW - 56;
  const max = Math.max(...rows.map((r) => r.value), 0) || 1;
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${rows.length * rowH + 4}`,
    role: "img",
    "aria-label": label,
  });
  rows.forEach((r, i) => {
    const y = i * rowH + 2;
    const w = Math.max(1, (r.value / max) * barW);
    svg.append(
      s("text", { x: labelW - 6, y: y + 14, "text-anchor": "end", class: "lbl" }, clip(r.label, 30)),
      s("rect", { x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 2, class: "bar" }),
      s("text", { x: labelW + w + 4, y: y + 14, class: "val" }, r.text ?? num(r.value, 2)),
      s("title", {}, `${r.label}: ${r.text ?? num(r.value, 3)}`),
    );
  });
  return svg;
}

// One bar per variant with its confidence interval as a whisker.
// rows: [{label, value, low, high, text, control}]; values in one unit (rate or minor units).
export function ciChart(rows, { label, width = 360 } = {}) {
  const rowH = 30;
  const labelW = 110;
  const plotW = width - labelW - 90;
  const max = Math.max(...rows.map((r) => Math.max(r.value ?? 0, r.high ?? 0)), 0) || 1;
  const x = (v) => labelW + (Math.max(0, v) / max) * plotW;
  const svg = s("svg", {
    class: "chart ci",
    viewBox: `0 0 ${width} ${rows.length * rowH + 4}`,
    role: "img",
    "aria-label": label,
  });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const mid = y + 11;
    svg.append(s("text", { x: labelW - 6, y: mid + 4, "text-anchor": "end", class: "lbl" }, clip(r.label, 16)));
    if (r.value !== null && r.value !== undefined) {
      svg.append(
        s("rect", {
          x: labelW,
          y,
          width: Math.max(1, x(r.value) - labelW),
          height: 22,
          rx: 2,
          class: r.control ? "bar control" : "bar",
        }),
      );
    }
    if (r.low !== null && r.low !== undefined && r.high !== null && r.high !== undefined) {
      svg.append(
        s("line", { x1: x(r.low), x2: x(r.high), y1: mid, y2: mid, class: "whisker" }),
        s("line", { x1: x(r.low), x2: x(r.low), y1: mid - 6, y2: mid + 6, class: "whisker" }),
        s("line", { x1: x(r.high), x2: x(r.high), y1: mid - 6, y2: mid + 6, class: "whisker" }),
      );
    }
    svg.append(s("text", { x: labelW + plotW + 6, y: mid + 4, class: "val" }, r.text));
    svg.append(s("title", {}, `${r.label}: ${r.text}${r.ciText ? ` (95% CI ${r.ciText})` : ""}`));
  });
  return svg;
}

// A labelled progress bar (budget or usage), value and max as integers.
export function progress(value, max, text) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  return h(
    "div",
    { class: "progress-wrap" },
    h("progress", { value: String(Math.min(value, max)), max: String(max), "aria-label": text }),
    h("span", { class: ratio >= 0.9 ? "warn-text" : "" }, text),
  );
}

function clip(text, n) {
  text = String(text);
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function field(labelText, input, hint) {
  return h("label", { class: "field" }, h("span", {}, labelText), input, hint ? h("small", {}, hint) : null);
}
