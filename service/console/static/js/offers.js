// Offers: stored promotions and coupon campaigns, their windows, usage and budgets.
import { gql } from "./api.js";
import { badge, clear, errorBox, h, money, progress, section, when } from "./ui.js";

const M = "{ amount currency }";
const SEGMENT = `{ firstOrder minOrders minDaysSinceLastPurchase maxDaysSinceLastPurchase
  minTotalSpent ${M} maxTotalSpent ${M} affinityCategory affinityMinRatio }`;
// Two documents: each stays within the API's cost limit for one request.
const PROMOTIONS = `
query ConsolePromotions {
  promotions(first: 50) {
    id type title description active priority stacking
    conditions { startsAt endsAt channels minQuantity minSubtotal ${M} segment ${SEGMENT} }
  }
}`;
const CAMPAIGNS = `
query ConsoleCampaigns {
  couponCampaigns(first: 50) {
    id title description currency active strategy startsAt endsAt
    discount { kind percent amount ${M} maxAmount ${M} productId }
    minSpend ${M} minQuantity eligible { productIds categories brands } segment ${SEGMENT}
    usageLimit perShopperLimit budget ${M} combinesWithPromotions
    used discountGiven ${M} budgetLeft ${M}
  }
}`;

const SET_PROMOTION = `
mutation ConsoleSetPromotion($id: ID!, $active: Boolean!) {
  setPromotionActive(id: $id, active: $active) { id active }
}`;
const UPDATE_CAMPAIGN = `
mutation ConsoleUpdateCampaign($input: CouponCampaignInput!) {
  updateCouponCampaign(input: $input) { id active }
}`;

function windowState(active, startsAt, endsAt) {
  if (!active) return badge("off", "muted");
  const now = Date.now();
  if (startsAt && Date.parse(startsAt) > now) return badge("scheduled", "warn");
  if (endsAt && Date.parse(endsAt) <= now) return badge("ended", "muted");
  return badge("live", "ok");
}

function windowText(startsAt, endsAt) {
  if (!startsAt && !endsAt) return "always";
  return `${startsAt ? when(startsAt) : "…"} → ${endsAt ? when(endsAt) : "…"}`;
}

function money$(m) {
  return m ? { amount: m.amount, currency: m.currency } : null;
}

// The campaign's own terms as CouponCampaignInput, with only `active` changed.
function campaignInput(c, active) {
  const sg = c.segment;
  return {
    id: c.id,
    title: c.title,
    description: c.description,
    currency: c.currency,
    discount: {
      kind: c.discount.kind,
      percent: c.discount.percent,
      amount: money$(c.discount.amount),
      maxAmount: money$(c.discount.maxAmount),
      productId: c.discount.productId,
    },
    startsAt: c.startsAt,
    endsAt: c.endsAt,
    minSpend: money$(c.minSpend),
    minQuantity: c.minQuantity,
    eligible: c.eligible,
    segment: sg
      ? {
          firstOrder: sg.firstOrder,
          minOrders: sg.minOrders,
          minDaysSinceLastPurchase: sg.minDaysSinceLastPurchase,
          maxDaysSinceLastPurchase: sg.maxDaysSinceLastPurchase,
          minTotalSpent: money$(sg.minTotalSpent),
          maxTotalSpent: money$(sg.maxTotalSpent),
          categoryAffinity: sg.affinityCategory ? { category: sg.affinityCategory, minRatio: sg.affinityMinRatio } : null,
        }
      : null,
    usageLimit: c.usageLimit,
    perShopperLimit: c.perShopperLimit,
    budget: money$(c.budget),
    combinesWithPromotions: c.combinesWithPromotions,
    active,
  };
}

function toggle(isActive, label, run, status, refresh, disabledWhy) {
  return h(
    "button",
    {
      type: "button",
      class: isActive ? "small quiet" : "small",
      disabled: Boolean(disabledWhy),
      title: disabledWhy || "",
      "aria-label": `${isActive ? "Disable" : "Enable"} ${label}`,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await run(!isActive);
          refresh();
        } catch (err) {
          clear(status, errorBox(err));
          event.target.disabled = false;
        }
      },
    },
    isActive ? "Disable" : "Enable",
  );
}

export async function render(root, params, current) {
  root.append(h("h1", {}, "Offers"));
  const [promotionData, campaignData] = await Promise.all([gql(PROMOTIONS), gql(CAMPAIGNS)]);
  const data = { ...promotionData, ...campaignData };
  if (!current()) return;
  const status = h("div", { "aria-live": "polite" });
  const refresh = () => render(clear(root), params, current);
  const promos = data.promotions.map((p) =>
    h(
      "tr",
      { "data-promotion": p.id },
      h("td", {}, h("strong", {}, p.title), h("small", { class: "block muted" }, `${p.id} · ${p.type}${p.conditions.segment ? " · segment" : ""}`)),
      h("td", {}, windowState(p.active, p.conditions.startsAt, p.conditions.endsAt)),
      h("td", {}, windowText(p.conditions.startsAt, p.conditions.endsAt)),
      h("td", {}, p.conditions.minSubtotal ? `from ${money(p.conditions.minSubtotal)}` : "–"),
      h("td", {}, p.stacking.toLowerCase()),
      h("td", {}, toggle(p.active, p.title, (active) => gql(SET_PROMOTION, { id: p.id, active }), status, refresh)),
    ),
  );
  const campaigns = data.couponCampaigns.map((c) => {
    const usage = c.usageLimit ? progress(c.used, c.usageLimit, `${c.used} of ${c.usageLimit} used`) : `${c.used} used`;
    const budget = c.budget
      ? progress(c.discountGiven.amount, c.budget.amount, `${money(c.discountGiven)} of ${money(c.budget)}`)
      : `${money(c.discountGiven)} given`;
    return h(
      "tr",
      { "data-campaign": c.id },
      h("td", {}, h("strong", {}, c.title), h("small", { class: "block muted" }, `${c.id} · ${c.discount.kind.toLowerCase().replaceAll("_", " ")}${c.strategy ? ` · by ${c.strategy}` : ""}`)),
      h("td", {}, windowState(c.active, c.startsAt, c.endsAt)),
      h("td", {}, windowText(c.startsAt, c.endsAt)),
      h("td", {}, usage),
      h("td", {}, budget),
      h(
        "td",
        {},
        toggle(
          c.active,
          c.title,
          (active) => gql(UPDATE_CAMPAIGN, { input: campaignInput(c, active) }),
          status,
          refresh,
          c.strategy ? `Managed by the coupon strategy ${c.strategy}: switch it in the plugin config.` : null,
        ),
      ),
    );
  });
  const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((t) => h("th", {}, t))));
  root.append(
    status,
    section(
      "Promotions",
      promos.length
        ? h("div", { class: "scroll" }, h("table", { class: "list", id: "promotions" }, head("Promotion", "Status", "Window", "Condition", "Stacking", ""), h("tbody", {}, promos)))
        : h("p", { class: "muted" }, "No stored promotions."),
      h("p", { class: "muted small" }, "Promotions apply automatically; the API does not count their uses."),
    ),
    section(
      "Coupon campaigns",
      campaigns.length
        ? h("div", { class: "scroll" }, h("table", { class: "list", id: "campaigns" }, head("Campaign", "Status", "Window", "Redemptions", "Budget used", ""), h("tbody", {}, campaigns)))
        : h("p", { class: "muted" }, "No coupon campaigns."),
    ),
  );
}
