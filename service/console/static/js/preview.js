// Shopper preview: the storefront answer for one shopper on one page, exactly as the API gives
// it, beside what Shopfront knows about the shopper.
import { gql, gqlPartial } from "./api.js";
import {
  badge, barChart, clear, errorBox, field, h, money, productImage, section, when,
} from "./ui.js";

const PAGES = ["HOME", "PRODUCT", "CATEGORY", "SEARCH", "CART", "CHECKOUT"];
const DEMO_PERSONAS = ["demo-0001", "demo-0002", "demo-0003", "demo-0004", "demo-0005", "demo-0006"];
const M = "{ amount currency }";
const PRODUCT = `{ id title imageUrl inStock price ${M} }`;

const STOREFRONT = `
query ConsolePreview($input: StorefrontInput!) {
  storefront(input: $input) {
    requestId
    experiments { experiment variant }
    degraded { strategy reason }
    slots {
      name title recommendationId
      items { position score product ${PRODUCT} reasons { code text strategy } }
    }
    coupons { code title expiresAt strategy reason { code text strategy } }
    cart {
      currency
      subtotal ${M} discountTotal ${M} shipping ${M} shippingDiscount ${M} total ${M}
      lines {
        index productId quantity product { title }
        unitPrice ${M} subtotal ${M} discount ${M} total ${M}
      }
      appliedPromotions { name title source amount ${M} shippingAmount ${M} }
      notApplied { name code reason conflictsWith missing ${M} }
      nudges { promotion text kind missingQuantity missing ${M} products { id title price ${M} } }
    }
  }
}`;

const PROFILE = `
query ConsoleProfile($userId: ID!) {
  profile(userId: $userId) {
    userId consentPersonalization sessions orders firstSeen lastSeen lastPurchaseAt
    totalSpent ${M} typicalPrice ${M}
    categoryAffinities { key score }
    brandAffinities { key score }
    recentlyViewed
  }
  shopperSegments(userId: $userId) { kind id title member reason }
  recentEvents(userId: $userId, first: 15) {
    type timestamp productId query quantity orderId rating price ${M}
  }
}`;

const RUNNING = `
query ConsoleRunning { experiments(status: [RUNNING]) { id name variants { name control } } }`;

// The form survives switching screens.
const state = {
  userId: "",
  anonymous: false,
  page: "HOME",
  productId: "",
  category: "",
  searchQuery: "",
  cart: "",
  coupons: "",
  forced: null, // {experiment, variant} shown instead of the shopper's own variant
};
const sessionId = `console-${crypto.randomUUID()}`;

export function parseCart(text) {
  const lines = [];
  for (const part of text.split(/[\n,;]+/)) {
    const t = part.trim();
    if (!t) continue;
    const m = t.match(/^(\S+?)(?:\s*[x×*]\s*(\d+))?$/i);
    if (!m) throw new Error(`Cannot read the cart line "${t}": write "product-id x 2".`);
    lines.push({ productId: m[1], quantity: m[2] ? Number(m[2]) : 1 });
  }
  return lines;
}

function storefrontInput() {
  const input = { page: state.page };
  if (state.anonymous || !state.userId.trim()) input.sessionId = sessionId;
  else input.userId = state.userId.trim();
  if (state.productId.trim()) input.productId = state.productId.trim();
  if (state.category.trim()) input.categoryPath = state.category.split(">").map((p) => p.trim()).filter(Boolean);
  if (state.searchQuery.trim()) input.searchQuery = state.searchQuery.trim();
  const lines = parseCart(state.cart);
  const codes = state.coupons.split(/[\s,]+/).filter(Boolean);
  if (lines.length || codes.length) input.cart = { lines, couponCodes: codes };
  // A preview is not a page view: nothing is recorded, and a variant may be chosen.
  input.preview = { variants: state.forced ? [state.forced] : [] };
  return input;
}

export async function render(root, params, current) {
  if (params[0]) {
    state.userId = params[0];
    state.anonymous = false;
  }
  const form = buildForm(root, current);
  const personas = h("div", { class: "personas", "aria-label": "Demo shoppers" });
  const results = h("div", { class: "preview-results", id: "preview-results" });
  root.append(h("h1", {}, "Shopper preview"), form, personas, results);
  loadPersonas(personas, form, current);
  await show(results, current);
}

function buildForm(root, current) {
  const input = (name, attrs) => {
    const el = h("input", { name, value: state[name], ...attrs });
    el.addEventListener("input", () => (state[name] = el.value));
    return el;
  };
  const anonymous = h("input", { type: "checkbox", name: "anonymous", checked: state.anonymous });
  anonymous.addEventListener("change", () => (state.anonymous = anonymous.checked));
  const page = h("select", { name: "page" }, PAGES.map((p) => h("option", { value: p, selected: p === state.page }, p)));
  page.addEventListener("change", () => (state.page = page.value));
  const cart = h("textarea", { name: "cart", rows: 2, placeholder: "sku-0001 x 2, sku-0042" });
  cart.value = state.cart;
  cart.addEventListener("input", () => (state.cart = cart.value));
  const form = h(
    "form",
    { class: "card preview-form", id: "preview-form" },
    h(
      "div",
      { class: "row" },
      field("Shopper id", input("userId", { placeholder: "demo-0001", autocomplete: "off" })),
      h("label", { class: "check" }, anonymous, " Anonymous shopper"),
      field("Page", page),
      field("Product id", input("productId", { placeholder: "PRODUCT page" })),
      field("Category", input("category", { placeholder: "Shoes > Running" })),
      field("Search query", input("searchQuery", {})),
    ),
    h(
      "div",
      { class: "row" },
      field("Cart (product id x quantity)", cart),
      field("Coupon codes", input("coupons", { placeholder: "SUMMER10" })),
      h("button", { type: "submit" }, "Preview"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.forced = null;
    const results = root.querySelector("#preview-results");
    show(results, current);
  });
  return form;
}

async function loadPersonas(box, form, current) {
  const query = `query ConsolePersonas {
    ${DEMO_PERSONAS.map((id, i) => `p${i}: profile(userId: "${id}") { userId orders categoryAffinities { key } }`).join("\n")}
  }`;
  let data;
  try {
    data = await gql(query);
  } catch {
    return; // personas are a convenience of the demo shop
  }
  if (!current()) return;
  const found = Object.values(data).filter(Boolean);
  if (!found.length) return;
  box.append(h("span", { class: "muted" }, "Demo shoppers: "));
  for (const p of found) {
    const likes = p.categoryAffinities.slice(0, 2).map((a) => a.key).join(", ");
    box.append(
      h(
        "button",
        {
          type: "button",
          class: "chip",
          title: likes ? `Likes ${likes}` : "",
          onclick: () => {
            state.userId = p.userId;
            state.anonymous = false;
            form.elements.userId.value = p.userId;
            form.elements.anonymous.checked = false;
            form.requestSubmit();
          },
        },
        p.userId,
        h("small", {}, likes ? ` · ${likes}` : ` · ${p.orders} orders`),
      ),
    );
  }
}

async function show(results, current) {
  clear(results, h("p", { class: "loading" }, "Asking the storefront…"));
  let input;
  try {
    input = storefrontInput();
  } catch (err) {
    clear(results, errorBox(err));
    return;
  }
  const userId = input.userId;
  const [answer, profile, running] = await Promise.allSettled([
    gqlPartial(STOREFRONT, { input }),
    userId ? gql(PROFILE, { userId }) : Promise.resolve(null),
    gql(RUNNING),
  ]);
  if (!current()) return;
  if (answer.status === "rejected") {
    clear(results, errorBox(answer.reason));
    return;
  }
  const { data, errors } = answer.value;
  const sf = data.storefront;
  const main = h("div", { class: "preview-main" });
  const side = h("aside", { class: "preview-side", "aria-label": "Shopper profile" });
  clear(results, main, side);

  main.append(experimentsBar(sf, running.status === "fulfilled" ? running.value.experiments : [], results, current));
  if (sf.degraded.length) {
    main.append(
      h(
        "div",
        { class: "notice degraded", role: "status" },
        h("strong", {}, "Degraded: "),
        sf.degraded.map((d) => h("span", { class: "deg" }, `${d.strategy} — ${d.reason}`)),
      ),
    );
  }
  for (const err of errors) main.append(errorBox(err));
  for (const slot of sf.slots) main.append(slotRow(slot, results, current));
  if (!sf.slots.length) main.append(section("Slots", h("p", { class: "muted" }, "No slots on this page.")));
  main.append(couponsBox(sf.coupons));
  if (sf.cart) main.append(cartBox(sf.cart));
  main.append(h("p", { class: "muted small" }, `Request ${sf.requestId} · previews are not recorded as page views.`));

  if (!userId) {
    side.append(section("Shopper", h("p", {}, "Anonymous shopper: no profile, no history.")));
  } else if (profile.status === "rejected") {
    side.append(section("Shopper", errorBox(profile.reason)));
  } else {
    side.append(...profileBoxes(profile.value, sf));
  }
}

function experimentsBar(sf, running, results, current) {
  const box = h("div", { class: "experiments-bar", id: "served-experiments" });
  const switcher = (experiment, variants, except) =>
    variants
      .filter((v) => v.name !== except)
      .map((v) =>
        h(
          "button",
          {
            type: "button",
            class: "switch-variant small",
            "data-variant": v.name,
            onclick: () => {
              state.forced = { experiment, variant: v.name };
              show(results, current);
            },
          },
          `Show as ${v.name}${v.control ? " (control)" : ""}`,
        ),
      );
  for (const served of sf.experiments) {
    const exp = running.find((e) => e.name === served.experiment);
    const chosen = state.forced && state.forced.experiment === served.experiment;
    box.append(
      h(
        "div",
        { class: "served", "data-experiment": served.experiment },
        h("span", {}, "Experiment ", h("strong", {}, served.experiment), ": variant "),
        h("strong", { class: "variant", "data-variant": served.variant }, served.variant),
        chosen ? badge("chosen in the console", "warn") : null,
        switcher(served.experiment, exp ? exp.variants : [], served.variant),
      ),
    );
  }
  const servedNames = new Set(sf.experiments.map((e) => e.experiment));
  for (const exp of running) {
    if (servedNames.has(exp.name)) continue;
    box.append(
      h(
        "div",
        { class: "served outside", "data-experiment": exp.name },
        h("span", {}, "Not in ", h("strong", {}, exp.name), " here. "),
        switcher(exp.name, exp.variants, null),
      ),
    );
  }
  if (!box.childElementCount) box.append(h("span", { class: "muted" }, "No experiment is running."));
  return box;
}

function slotRow(slot, results, current) {
  const cards = slot.items.map((item) =>
    h(
      "li",
      { class: "product-card" },
      productImage(item.product),
      h("div", { class: "title", title: item.product.id }, item.product.title),
      h("div", { class: "price" }, money(item.product.price), item.product.inStock ? null : badge("sold out", "warn")),
      h(
        "ul",
        { class: "reasons" },
        item.reasons.map((r) => h("li", { title: `${r.code} · ${r.strategy}` }, r.text, h("small", {}, ` ${r.strategy}`))),
      ),
      h("div", { class: "meta" }, `#${item.position} · score ${item.score.toFixed(3)}`),
      h(
        "button",
        {
          type: "button",
          class: "quiet small",
          "aria-label": `Add ${item.product.title} to the cart`,
          onclick: () => {
            state.cart = state.cart.trim() ? `${state.cart.trim()}, ${item.product.id}` : item.product.id;
            const area = document.querySelector("#preview-form textarea[name=cart]");
            if (area) area.value = state.cart;
            show(results, current);
          },
        },
        "Add to cart",
      ),
    ),
  );
  return h(
    "section",
    { class: "card slot", "data-slot": slot.name },
    h("h2", {}, slot.title, h("small", {}, ` ${slot.name} · ${slot.items.length} items`)),
    slot.items.length ? h("ol", { class: "cards" }, cards) : h("p", { class: "muted" }, "Empty: no strategy had candidates."),
  );
}

function couponsBox(coupons) {
  return section(
    "Coupons offered",
    coupons.length
      ? h(
          "ul",
          { class: "coupons" },
          coupons.map((c) =>
            h(
              "li",
              {},
              h("code", {}, c.code),
              ` ${c.title} `,
              h("span", { class: "why" }, `— ${c.reason.text}`),
              h("small", {}, ` (${c.strategy}${c.expiresAt ? `, until ${when(c.expiresAt)}` : ""})`),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No coupon offered to this shopper."),
  );
}

function cartBox(cart) {
  if (!cart.lines.length) {
    return h("section", { class: "card cart", id: "priced-cart" }, h("h2", {}, "Priced cart"), h("p", { class: "muted" }, "Empty cart: add products above or with “Add to cart”."));
  }
  const row = (label, value, cls) => h("tr", { class: cls || "" }, h("th", { scope: "row", colspan: 4 }, label), h("td", { class: "num" }, value));
  return h(
    "section",
    { class: "card cart", id: "priced-cart" },
    h("h2", {}, "Priced cart"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", {}, "Product"), h("th", { class: "num" }, "Qty"), h("th", { class: "num" }, "Unit"), h("th", { class: "num" }, "Discount"), h("th", { class: "num" }, "Total"))),
      h(
        "tbody",
        {},
        cart.lines.map((l) =>
          h(
            "tr",
            {},
            h("td", {}, l.product ? l.product.title : l.productId),
            h("td", { class: "num" }, l.quantity),
            h("td", { class: "num" }, money(l.unitPrice)),
            h("td", { class: "num" }, l.discount.amount ? `−${money(l.discount)}` : "–"),
            h("td", { class: "num" }, money(l.total)),
          ),
        ),
      ),
      h(
        "tfoot",
        {},
        row("Subtotal", money(cart.subtotal)),
        row("Discounts", cart.discountTotal.amount ? `−${money(cart.discountTotal)}` : "–"),
        row("Shipping", money(cart.shipping)),
        cart.shippingDiscount.amount ? row("Shipping discount", `−${money(cart.shippingDiscount)}`) : null,
        row("Total", money(cart.total), "total"),
      ),
    ),
    h("h3", {}, "Applied"),
    cart.appliedPromotions.length
      ? h("ul", { class: "applied" }, cart.appliedPromotions.map((p) => h("li", {}, badge("applied", "ok"), ` ${p.title} `, h("strong", {}, `−${money(p.amount)}`), p.shippingAmount.amount ? ` (shipping −${money(p.shippingAmount)})` : null, h("small", {}, ` ${p.source}`))))
      : h("p", { class: "muted" }, "No promotion applies."),
    cart.notApplied.length ? h("h3", {}, "Not applied") : null,
    cart.notApplied.length
      ? h("ul", { class: "not-applied" }, cart.notApplied.map((p) => h("li", {}, badge(p.code, "muted"), ` ${p.name}: ${p.reason}`, p.missing ? ` (${money(p.missing)} to go)` : null, p.conflictsWith.length ? ` — conflicts with ${p.conflictsWith.join(", ")}` : null)))
      : null,
    cart.nudges.length ? h("h3", {}, "Nudges") : null,
    cart.nudges.length
      ? h("ul", { class: "nudges" }, cart.nudges.map((n) => h("li", {}, h("strong", {}, n.text), n.products.length ? h("small", {}, ` — e.g. ${n.products.slice(0, 3).map((p) => `${p.title} (${money(p.price)})`).join(", ")}`) : null)))
      : null,
  );
}

function profileBoxes(data, sf) {
  const p = data.profile;
  if (!p) return [section("Shopper", h("p", {}, "No profile yet: this shopper has sent no events."))];
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Shopper"), h("dd", {}, p.userId),
    h("dt", {}, "Personalization"), h("dd", {}, p.consentPersonalization ? "consented" : "withheld"),
    h("dt", {}, "Orders"), h("dd", {}, `${p.orders} (${money(p.totalSpent)})`),
    h("dt", {}, "Sessions"), h("dd", {}, p.sessions),
    h("dt", {}, "Typical price"), h("dd", {}, money(p.typicalPrice)),
    h("dt", {}, "Last seen"), h("dd", {}, when(p.lastSeen)),
  );
  const chart = (title, rows) =>
    rows.length
      ? h("figure", {}, h("figcaption", {}, title), barChart(rows.slice(0, 8).map((a) => ({ label: a.key, value: a.score })), { label: title }))
      : null;
  const tastes = section(
    "Tastes",
    chart("Category affinity", p.categoryAffinities),
    chart("Brand affinity", p.brandAffinities),
    !p.categoryAffinities.length && !p.brandAffinities.length ? h("p", { class: "muted" }, "No affinities yet.") : null,
  );
  const inSegments = data.shopperSegments.filter((sgm) => sgm.member);
  const outSegments = data.shopperSegments.filter((sgm) => !sgm.member);
  const segmentItem = (sgm) =>
    h(
      "li",
      { "data-segment": sgm.id },
      badge(sgm.kind === "PROMOTION" ? "promotion" : "coupon"),
      ` ${sgm.title}`,
      sgm.reason ? h("small", { class: "block muted" }, sgm.reason) : null,
    );
  const segments = section(
    "Segments",
    data.shopperSegments.length
      ? [
          inSegments.length
            ? h("ul", { class: "segments in" }, inSegments.map(segmentItem))
            : h("p", { class: "muted" }, "In none of the targeted offers' segments."),
          outSegments.length ? h("h3", {}, "Not in") : null,
          outSegments.length ? h("ul", { class: "segments out" }, outSegments.map(segmentItem)) : null,
        ]
      : h("p", { class: "muted" }, "No active promotion or coupon targets a segment."),
  );
  const variants = section(
    "Experiments",
    sf.experiments.length
      ? h("ul", {}, sf.experiments.map((e) => h("li", {}, `${e.experiment}: `, h("strong", {}, e.variant))))
      : h("p", { class: "muted" }, "In no running experiment here."),
  );
  const timeline = section(
    "Recent events",
    data.recentEvents.length
      ? h("ol", { class: "timeline" }, data.recentEvents.map((e) => h("li", {}, h("time", { datetime: e.timestamp }, when(e.timestamp)), " ", badge(e.type.toLowerCase().replaceAll("_", " "), `ev-${e.type.toLowerCase()}`), " ", eventText(e))))
      : h("p", { class: "muted" }, "No events kept for this shopper."),
  );
  return [section("Shopper", facts), tastes, segments, variants, timeline];
}

function eventText(e) {
  const parts = [];
  if (e.productId) parts.push(e.productId);
  if (e.quantity && e.quantity > 1) parts.push(`× ${e.quantity}`);
  if (e.query) parts.push(`“${e.query}”`);
  if (e.price) parts.push(money(e.price));
  if (e.orderId) parts.push(`order ${e.orderId}`);
  if (e.rating) parts.push(`${e.rating}★`);
  return parts.join(" ");
}
