// Experiments: the list with status and controls, and one experiment's report.
import { gql } from "./api.js";
import {
  badge, ciChart, clear, errorBox, h, money, num, pct, section, signedPct, statusBadge, when,
} from "./ui.js";

const LIST = `
query ConsoleExperiments {
  experiments(first: 100) {
    id name description status layer traffic areas startedAt stoppedAt endsAt
    variants { name weight control }
  }
}`;

const M = "{ amount currency }";
const REPORT = `
query ConsoleReport($id: ID!) {
  experimentReport(id: $id) {
    experimentId name status currency startedAt windowEnd
    sampleRatioMismatch srmPValue warnings confidence
    variants {
      name control weight exposures impressions clicks conversions orders
      ctr ctrCi { low high }
      conversionRate conversionRateCi { low high }
      revenue ${M} revenuePerShopper ${M}
      revenuePerShopperCi { low ${M} high ${M} }
      liftVsControl liftCi { low high } revenueLiftVsControl
      conversionPValue revenuePValue significant revenueSignificant verdict warnings
    }
  }
}`;

const ACTIONS = {
  start: "mutation ConsoleStart($id: ID!) { startExperiment(id: $id) { id status } }",
  pause: "mutation ConsolePause($id: ID!) { pauseExperiment(id: $id) { id status } }",
  stop: "mutation ConsoleStop($id: ID!) { stopExperiment(id: $id) { id status } }",
};

export async function render(root, params, current) {
  if (params[0]) return renderReport(root, params[0], current);
  root.append(h("h1", {}, "Experiments"));
  const data = await gql(LIST);
  if (!current()) return;
  if (!data.experiments.length) {
    root.append(section("No experiments", h("p", {}, "Create one with the createExperiment mutation.")));
    return;
  }
  const status = h("div", { "aria-live": "polite" });
  root.append(
    status,
    h(
      "table",
      { class: "card list", id: "experiments" },
      h("thead", {}, h("tr", {}, ["Experiment", "Status", "Traffic", "Variants", "Started", "Actions"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        data.experiments.map((e) =>
          h(
            "tr",
            { "data-experiment": e.id },
            h("td", {}, h("a", { href: `#/experiments/${encodeURIComponent(e.id)}` }, e.name), h("small", { class: "block muted" }, e.description || e.areas.join(", "))),
            h("td", {}, statusBadge(e.status)),
            h("td", { class: "num" }, pct(e.traffic, 0)),
            h("td", {}, e.variants.map((v) => `${v.name}${v.control ? " (control)" : ""}`).join(", ")),
            h("td", {}, when(e.startedAt)),
            h("td", { class: "actions" }, controls(e, status, () => render(clear(root), params, current))),
          ),
        ),
      ),
    ),
  );
}

function controls(e, status, refresh) {
  const button = (action, label, confirmText) =>
    h(
      "button",
      {
        type: "button",
        class: action === "stop" ? "danger small" : "small",
        "data-action": action,
        onclick: async (event) => {
          if (confirmText && !window.confirm(confirmText)) return;
          event.target.disabled = true;
          try {
            await gql(ACTIONS[action], { id: e.id });
            refresh();
          } catch (err) {
            clear(status, errorBox(err));
            event.target.disabled = false;
          }
        },
      },
      label,
    );
  const out = [];
  if (e.status === "DRAFT") out.push(button("start", "Start"));
  if (e.status === "PAUSED") out.push(button("start", "Resume"));
  if (e.status === "RUNNING") out.push(button("pause", "Pause"));
  if (e.status !== "STOPPED") out.push(button("stop", "Stop", `Stop ${e.name} for good? Its report stays.`));
  return out;
}

const HEADER = `
query ConsoleExperiment($id: ID!) {
  experiment(id: $id) { id name description status layer traffic startedAt }
}`;

async function renderReport(root, id, current) {
  root.append(h("p", {}, h("a", { href: "#/experiments" }, "← All experiments")));
  // The report aggregates every exposure and order: its header comes first, from the
  // experiment itself, while the figures are computed.
  const reportCall = gql(REPORT, { id });
  reportCall.catch(() => {}); // reported below, once the header is on screen
  const head = await gql(HEADER, { id });
  if (!current()) return;
  if (!head.experiment) {
    root.append(section("Not found", h("p", {}, `No experiment ${id}.`)));
    return;
  }
  const e = head.experiment;
  const pending = h("p", { class: "loading", id: "report-pending" }, "Computing the report…");
  root.append(
    h("h1", { id: "report-title" }, e.name, " ", statusBadge(e.status)),
    h("p", { class: "muted" }, e.description),
    pending,
  );
  let data;
  try {
    data = await reportCall;
  } finally {
    pending.remove();
  }
  if (!current()) return;
  const r = data.experimentReport;
  root.append(
    h("p", { class: "muted" }, `From ${when(r.startedAt)} to ${when(r.windowEnd)} · ${pct(r.confidence, 0)} intervals · revenue in ${r.currency}`),
  );
  if (r.sampleRatioMismatch) {
    root.append(
      h(
        "div",
        { class: "notice srm", role: "alert", id: "srm-warning" },
        h("strong", {}, "Sample ratio mismatch: "),
        `exposed shoppers per variant differ from the configured weights (p = ${r.srmPValue === null ? "–" : r.srmPValue.toExponential(2)}). Check assignment and logging before trusting these results.`,
      ),
    );
  }
  for (const w of r.warnings) root.append(h("p", { class: "notice" }, w));
  const vs = r.variants;
  const charts = h(
    "div",
    { class: "charts" },
    section(
      "Conversion rate",
      ciChart(
        vs.map((v) => ({ label: v.name, control: v.control, value: v.conversionRate, low: v.conversionRateCi?.low, high: v.conversionRateCi?.high, text: pct(v.conversionRate, 2), ciText: v.conversionRateCi ? `${pct(v.conversionRateCi.low, 2)}–${pct(v.conversionRateCi.high, 2)}` : "" })),
        { label: "Conversion rate per variant with 95% intervals" },
      ),
    ),
    section(
      "Click-through rate",
      ciChart(
        vs.map((v) => ({ label: v.name, control: v.control, value: v.ctr, low: v.ctrCi?.low, high: v.ctrCi?.high, text: pct(v.ctr, 2), ciText: v.ctrCi ? `${pct(v.ctrCi.low, 2)}–${pct(v.ctrCi.high, 2)}` : "" })),
        { label: "Click-through rate per variant with 95% intervals" },
      ),
    ),
    section(
      "Revenue per visitor",
      ciChart(
        vs.map((v) => ({ label: v.name, control: v.control, value: v.revenuePerShopper.amount, low: v.revenuePerShopperCi?.low.amount, high: v.revenuePerShopperCi?.high.amount, text: money(v.revenuePerShopper), ciText: v.revenuePerShopperCi ? `${money(v.revenuePerShopperCi.low)}–${money(v.revenuePerShopperCi.high)}` : "" })),
        { label: "Revenue per exposed shopper per variant with 95% intervals" },
      ),
    ),
  );
  const table = h(
    "table",
    { class: "card list", id: "report" },
    h("thead", {}, h("tr", {}, ["Variant", "Weight", "Exposed", "Impr.", "Clicks", "CTR", "Conv.", "Conv. rate", "Lift (95% CI)", "p", "Revenue", "Rev./visitor", "Rev. lift", "Verdict"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      vs.map((v) =>
        h(
          "tr",
          { "data-variant": v.name },
          h("th", { scope: "row" }, v.name, v.control ? badge("control", "muted") : null),
          h("td", { class: "num" }, pct(v.weight, 0)),
          h("td", { class: "num" }, v.exposures),
          h("td", { class: "num" }, v.impressions),
          h("td", { class: "num" }, v.clicks),
          h("td", { class: "num" }, pct(v.ctr, 2)),
          h("td", { class: "num" }, v.conversions),
          h("td", { class: "num" }, pct(v.conversionRate, 2)),
          h("td", { class: "num" }, v.control ? "–" : `${signedPct(v.liftVsControl)}${v.liftCi ? ` (${signedPct(v.liftCi.low)} … ${signedPct(v.liftCi.high)})` : ""}`),
          h("td", { class: "num" }, v.control ? "–" : num(v.conversionPValue, 3)),
          h("td", { class: "num" }, money(v.revenue)),
          h("td", { class: "num" }, money(v.revenuePerShopper)),
          h("td", { class: "num" }, v.control ? "–" : signedPct(v.revenueLiftVsControl)),
          h("td", {}, v.significant ? badge("significant", "ok") : null, " ", v.verdict, v.warnings.map((w) => h("small", { class: "block warn-text" }, w))),
        ),
      ),
    ),
  );
  root.append(charts, h("div", { class: "scroll" }, table));
}
