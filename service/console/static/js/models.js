// Models and plugins: trained versions with their offline metrics (activate / roll back), and
// the loaded plugins with their strategies' health.
import { gql } from "./api.js";
import { badge, clear, errorBox, h, num, section, when } from "./ui.js";

const LIST = `
query ConsoleModels {
  models(first: 20) {
    version status trainedAt activatedAt windowStart windowEnd sizes metrics loaded
    artifacts { strategy bytes fitSeconds }
  }
  plugins {
    name source distribution version hooks
    strategies {
      kind name enabled personalized timeoutMs
      health { calls failures timeouts shortCircuited breakerState consecutiveFailures breakerOpened lastError }
    }
  }
}`;

const ACTIVATE = `
mutation ConsoleActivate($version: String!) { activateModel(version: $version) { version status loaded } }`;

export async function render(root, params, current) {
  root.append(h("h1", {}, "Models & plugins"));
  const data = await gql(LIST);
  if (!current()) return;
  const status = h("div", { "aria-live": "polite" });
  root.append(status, modelsSection(data.models, status, () => render(clear(root), params, current)), pluginsSection(data.plugins));
}

function metricsTable(metrics) {
  const strategies = Object.keys(metrics || {}).sort();
  if (!strategies.length) return h("span", { class: "muted" }, "not measured");
  const names = [...new Set(strategies.flatMap((s) => Object.keys(metrics[s] || {})))].sort();
  return h(
    "table",
    { class: "metrics" },
    h("thead", {}, h("tr", {}, h("th", {}, "Strategy"), names.map((n) => h("th", { class: "num" }, n)))),
    h("tbody", {}, strategies.map((s) => h("tr", {}, h("th", { scope: "row" }, s), names.map((n) => h("td", { class: "num" }, num(metrics[s][n], 4)))))),
  );
}

function modelsSection(versions, status, refresh) {
  if (!versions.length) {
    return section("Model versions", h("p", { class: "muted" }, "No model trained yet: run `shopfront train`."));
  }
  const activeIndex = versions.findIndex((v) => v.status === "active");
  const rows = versions.map((v, i) => {
    const older = activeIndex >= 0 && i > activeIndex;
    const action =
      v.status === "active"
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "small",
              "data-action": older ? "rollback" : "activate",
              onclick: async (event) => {
                const verb = older ? "Roll back to" : "Activate";
                if (!window.confirm(`${verb} model ${v.version}? Every instance serves it within its poll interval.`)) return;
                event.target.disabled = true;
                try {
                  await gql(ACTIVATE, { version: v.version });
                  refresh();
                } catch (err) {
                  clear(status, errorBox(err));
                  event.target.disabled = false;
                }
              },
            },
            older ? "Roll back to this" : "Activate",
          );
    const sizes = Object.entries(v.sizes || {}).map(([k, n]) => `${n} ${k}`).join(" · ");
    return h(
      "tr",
      { "data-version": v.version, "data-status": v.status },
      h("td", {}, h("code", {}, v.version), h("small", { class: "block muted" }, sizes)),
      h("td", {}, v.status === "active" ? badge("active", "ok") : badge("inactive", "muted"), v.loaded ? badge("serving here", "ok") : null),
      h("td", {}, when(v.trainedAt), h("small", { class: "block muted" }, `events ${when(v.windowStart)} → ${when(v.windowEnd)}`)),
      h("td", {}, metricsTable(v.metrics)),
      h("td", {}, action),
    );
  });
  return section(
    "Model versions",
    h(
      "div",
      { class: "scroll" },
      h("table", { class: "list", id: "models" }, h("thead", {}, h("tr", {}, ["Version", "Status", "Trained", "Offline metrics", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
    ),
  );
}

function pluginsSection(plugins) {
  const health = (x) => {
    const kinds = { CLOSED: "ok", HALF_OPEN: "warn", OPEN: "bad" };
    return h(
      "span",
      {},
      badge(`breaker ${x.breakerState.toLowerCase().replace("_", "-")}`, kinds[x.breakerState]),
      ` ${x.calls} calls · ${x.failures} failures · ${x.timeouts} timeouts`,
      x.shortCircuited ? ` · ${x.shortCircuited} skipped` : "",
      x.lastError ? h("small", { class: "block warn-text" }, `last error: ${x.lastError}`) : null,
    );
  };
  return section(
    "Plugins",
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "list", id: "plugins" },
        h("thead", {}, h("tr", {}, ["Plugin", "Hooks", "Strategies and health"].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          plugins.map((p) =>
            h(
              "tr",
              { "data-plugin": p.name },
              h("td", {}, h("strong", {}, p.name), h("small", { class: "block muted" }, `${p.source}${p.distribution ? ` · ${p.distribution}` : ""}${p.version ? ` ${p.version}` : ""}`)),
              h("td", {}, h("small", {}, p.hooks.join(", ") || "–")),
              h(
                "td",
                {},
                p.strategies.length
                  ? h("ul", { class: "strategies" }, p.strategies.map((st) => h("li", {}, h("strong", {}, st.name), ` ${st.kind.toLowerCase()}${st.enabled ? "" : " (off)"} · ${st.timeoutMs} ms · `, health(st.health))))
                  : h("span", { class: "muted" }, "policy hooks only"),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
