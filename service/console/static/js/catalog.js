// Catalog: find products (by title, id, category or brand), open one, and see its neighbours with the
// scores the recommenders give them, asked through the storefront like any page.
import { gql } from "./api.js";
import { badge, clear, field, h, money, productImage, section } from "./ui.js";

const M = "{ amount currency }";
const PRODUCT = `{ id title brand categoryPath tags stock inStock active imageUrl price ${M} }`;
const SEARCH = `
query ConsoleProducts($filter: ProductFilterInput, $after: String) {
  products(filter: $filter, first: 24, after: $after) { nodes ${PRODUCT} pageInfo { hasNextPage endCursor } }
}`;
const ONE = `
query ConsoleProduct($id: ID!, $input: StorefrontInput!) {
  product(id: $id) { description attributes { key value } createdAt updatedAt ...P }
  storefront(input: $input) {
    degraded { strategy reason }
    slots { name title items { position score product ${PRODUCT} reasons { code text strategy } } }
  }
}
fragment P on Product ${PRODUCT}`;

// The neighbour lists a product page can show; each asked for with its own strategy.
const NEIGHBOURS = [
  { name: "similar_items", strategy: "similar_items" },
  { name: "bought_together", strategy: "bought_together" },
  { name: "also_viewed", strategy: "also_viewed" },
];

const state = { title: "", text: "", brand: "", inStock: false };

export async function render(root, params, current) {
  if (params[0]) return renderProduct(root, params[0], current);
  const title = h("input", { name: "title", value: state.title, placeholder: "trail runner", type: "search" });
  const text = h("input", { name: "text", value: state.text, placeholder: "sku-0001, or Shoes > Running" });
  const brand = h("input", { name: "brand", value: state.brand, placeholder: "Brand" });
  const inStock = h("input", { type: "checkbox", name: "inStock", checked: state.inStock });
  const results = h("div", { id: "catalog-results" });
  const form = h(
    "form",
    { class: "card row", id: "catalog-search" },
    field("Title contains", title),
    field("Product id(s) or category path", text),
    field("Brand", brand),
    h("label", { class: "check" }, inStock, " In stock only"),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Object.assign(state, { title: title.value, text: text.value, brand: brand.value, inStock: inStock.checked });
    search(results, current, null);
  });
  root.append(h("h1", {}, "Catalog"), form, results);
  await search(results, current, null);
}

function filterOf() {
  const filter = {};
  const t = state.text.trim();
  if (t.includes(">")) filter.categoryPath = t.split(">").map((x) => x.trim()).filter(Boolean);
  else if (t) filter.ids = t.split(/[\s,]+/).filter(Boolean);
  if (state.title.trim()) filter.titleContains = state.title.trim();
  if (state.brand.trim()) filter.brands = [state.brand.trim()];
  if (state.inStock) filter.inStock = true;
  filter.includeInactive = true;
  return filter;
}

async function search(results, current, after) {
  const data = await gql(SEARCH, { filter: filterOf(), after });
  if (!current()) return;
  const { nodes, pageInfo } = data.products;
  const list = h(
    "ol",
    { class: "cards grid" },
    nodes.map((p) =>
      h(
        "li",
        { class: "product-card" },
        h("a", { href: `#/catalog/${encodeURIComponent(p.id)}`, class: "card-link" }, productImage(p), h("div", { class: "title" }, p.title)),
        h("div", { class: "price" }, money(p.price), p.inStock ? null : badge("sold out", "warn"), p.active ? null : badge("inactive", "muted")),
        h("div", { class: "meta" }, `${p.id} · ${p.brand || "no brand"}`),
      ),
    ),
  );
  if (!after) clear(results);
  results.querySelector(".more")?.remove();
  results.append(nodes.length ? list : h("p", { class: "muted" }, "No product matches."));
  if (pageInfo.hasNextPage) {
    results.append(h("button", { type: "button", class: "more quiet", onclick: () => search(results, current, pageInfo.endCursor) }, "More products"));
  }
}

async function renderProduct(root, id, current) {
  root.append(h("p", {}, h("a", { href: "#/catalog" }, "← Catalog")));
  const input = {
    page: "PRODUCT",
    productId: id,
    sessionId: "console-catalog",
    slots: NEIGHBOURS.map((n) => ({ name: n.name, strategy: n.strategy, limit: 12 })),
    preview: { variants: [] },
  };
  const data = await gql(ONE, { id, input });
  if (!current()) return;
  const p = data.product;
  if (!p) {
    root.append(section("Not found", h("p", {}, `No product ${id}.`)));
    return;
  }
  root.append(
    h(
      "section",
      { class: "card product-detail" },
      productImage(p),
      h(
        "div",
        {},
        h("h1", {}, p.title),
        h("p", {}, money(p.price), " ", p.inStock ? badge(`${p.stock} in stock`, "ok") : badge("sold out", "warn"), p.active ? null : badge("inactive", "muted")),
        h("dl", { class: "facts" },
          h("dt", {}, "Id"), h("dd", {}, p.id),
          h("dt", {}, "Brand"), h("dd", {}, p.brand || "–"),
          h("dt", {}, "Category"), h("dd", {}, p.categoryPath.join(" > ") || "–"),
          h("dt", {}, "Tags"), h("dd", {}, p.tags.join(", ") || "–"),
          p.attributes.map((a) => [h("dt", {}, a.key), h("dd", {}, a.value)]),
        ),
        p.description ? h("p", { class: "muted" }, p.description) : null,
      ),
    ),
  );
  for (const d of data.storefront.degraded) root.append(h("p", { class: "notice" }, `${d.strategy}: ${d.reason}`));
  for (const slot of data.storefront.slots) {
    root.append(
      h(
        "section",
        { class: "card neighbours", "data-slot": slot.name },
        h("h2", {}, slot.title),
        slot.items.length
          ? h(
              "table",
              { class: "list" },
              h("thead", {}, h("tr", {}, ["#", "Product", "Price", "Score", "Why"].map((t) => h("th", {}, t)))),
              h(
                "tbody",
                {},
                slot.items.map((it) =>
                  h(
                    "tr",
                    {},
                    h("td", { class: "num" }, it.position),
                    h("td", {}, h("a", { href: `#/catalog/${encodeURIComponent(it.product.id)}` }, it.product.title), h("small", { class: "block muted" }, it.product.id)),
                    h("td", { class: "num" }, money(it.product.price)),
                    h("td", { class: "num score" }, it.score.toFixed(4)),
                    h("td", {}, it.reasons.map((r) => r.text).join("; ")),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No neighbours yet (train a model, or the product has no co-occurrences)."),
      ),
    );
  }
}
