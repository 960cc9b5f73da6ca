// Runs both clients against a running Shopfront demo service:
//   SHOPFRONT_GRAPHQL_URL=http://127.0.0.1:8000/graphql SHOPFRONT_STOREFRONT_KEY=... npm test
// (tests/examples/test_storefront_js.py starts a demo service and runs this.)
// Any console warning or error, or a Node process warning, fails the run.
import assert from "node:assert/strict";
import { after, describe as group, test } from "node:test";

import * as apollo from "../apollo.js";
import {
  ShopfrontError,
  clickEvent,
  describe,
  fetchStorefront,
  formatMoney,
  graphql,
  trackEvents,
} from "../storefront.js";

const url = process.env.SHOPFRONT_GRAPHQL_URL;
const key = process.env.SHOPFRONT_STOREFRONT_KEY;
assert.ok(url && key, "set SHOPFRONT_GRAPHQL_URL and SHOPFRONT_STOREFRONT_KEY");

const warnings = [];
for (const level of ["warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    warnings.push(`console.${level}: ${args.map(String).join(" ")}`);
    original(...args);
  };
}
process.on("warning", (warning) => warnings.push(`process: ${warning.name}: ${warning.message}`));
after(() => assert.deepEqual(warnings, [], "the clients printed warnings"));

const run = `${process.pid}-${Date.now()}`;
const home = (sessionId) => ({ sessionId, page: "HOME" });

function assertAnswer(storefront) {
  assert.match(storefront.requestId, /\S/);
  assert.ok(storefront.slots.length > 0, "no slots");
  for (const slot of storefront.slots) {
    assert.match(slot.recommendationId, /\S/);
    assert.deepEqual(
      slot.items.map((item) => item.position),
      slot.items.map((_, i) => i + 1),
      "positions are 1-based",
    );
    for (const item of slot.items) assert.ok(item.reasons.length > 0, "an item without a reason");
  }
}

group("plain fetch", () => {
  test("shows the storefront answer and sends a click quoting the recommendationId", async () => {
    const sessionId = `js-fetch-${run}`;
    const storefront = await fetchStorefront({ url, key, input: home(sessionId) });
    assertAnswer(storefront);
    const shown = describe(storefront);
    assert.ok(shown.some((line) => / EUR — /.test(line)), shown.join("\n"));

    const slot = storefront.slots.find((s) => s.items.length > 0);
    const event = clickEvent({ slot, item: slot.items[0], sessionId });
    assert.equal(event.recommendationId, slot.recommendationId);
    assert.equal(event.position, 1);
    const sent = await trackEvents({ url, key, events: [event] });
    assert.deepEqual([sent.accepted, sent.rejected], [1, 0], JSON.stringify(sent.results));
    const again = await trackEvents({ url, key, events: [event] });
    assert.equal(again.duplicates, 1, "a retried event must not count twice");
  });

  test("a bad cart line is reported on its line and the rest is priced", async () => {
    const input = {
      sessionId: `js-cart-${run}`,
      page: "CART",
      cart: {
        lines: [
          { productId: "sku-0001", quantity: 2 },
          { productId: "sku-does-not-exist", quantity: 1 },
        ],
      },
    };
    const { cart } = await fetchStorefront({ url, key, input });
    assert.deepEqual(
      cart.lines.map((line) => [line.index, line.productId]),
      [[0, "sku-0001"]],
    );
    assert.deepEqual(
      cart.errors.map((e) => [e.index, e.code]),
      [[1, "PRODUCT_NOT_FOUND"]],
    );
  });

  test("an unknown product page is an error with a code", async () => {
    const input = { sessionId: `js-pdp-${run}`, page: "PRODUCT", productId: "sku-gone" };
    await assert.rejects(fetchStorefront({ url, key, input }), (error) => {
      assert.ok(error instanceof ShopfrontError);
      assert.deepEqual(error.codes, ["PRODUCT_NOT_FOUND"]);
      return true;
    });
  });

  test("money is formatted from minor units without floating point", () => {
    assert.equal(formatMoney({ amount: 9899, currency: "EUR" }), "98.99 EUR");
    assert.equal(formatMoney({ amount: 5, currency: "EUR" }), "0.05 EUR");
    assert.equal(formatMoney({ amount: -1450, currency: "EUR" }), "-14.50 EUR");
    assert.equal(formatMoney({ amount: 1200, currency: "JPY" }, 0), "1200 JPY");
  });
});

group("Apollo Client", () => {
  test("every storefront query reaches the service: fresh ids, events attributed", async () => {
    const client = apollo.createClient({ url, key });
    const sessionId = `js-apollo-${run}`;
    const first = await apollo.fetchStorefront(client, home(sessionId));
    const second = await apollo.fetchStorefront(client, home(sessionId));
    assertAnswer(first);
    assert.notEqual(second.requestId, first.requestId, "a cached answer was served");
    assert.notEqual(second.slots[0].recommendationId, first.slots[0].recommendationId);

    const slot = second.slots.find((s) => s.items.length > 0);
    const sent = await apollo.trackEvents(client, [clickEvent({ slot, item: slot.items[0], sessionId })]);
    assert.equal(sent.accepted, 1, JSON.stringify(sent.results));
  });

  test("Money without identity merges in the cache without warnings", async () => {
    const client = apollo.createClient({ url, key });
    const { gql } = await import("@apollo/client/core/index.js");
    const ids = ["sku-0001", "sku-0002"];
    const amounts = gql`query($ids: [ID!]) { products(filter: {ids: $ids}) { nodes { id price { amount } } } }`;
    const full = gql`query($ids: [ID!]) { products(filter: {ids: $ids}) { nodes { id title price { currency } } } }`;
    await client.query({ query: amounts, variables: { ids } });
    const { data } = await client.query({ query: full, variables: { ids } });
    assert.deepEqual(data.products.nodes.map((p) => p.price.currency), ["EUR", "EUR"]);
    // Both selections of Product.price are kept in the normalised Product entries.
    const cached = client.cache.extract();
    assert.deepEqual(cached["Product:sku-0001"].price, {
      __typename: "Money",
      amount: cached["Product:sku-0001"].price.amount,
      currency: "EUR",
    });
    assert.equal(typeof cached["Product:sku-0001"].price.amount, "number");
  });

  test("the same request over plain fetch and Apollo reads the same catalog", async () => {
    const query = `{ product(id: "sku-0001") { id title price { amount currency } } }`;
    const plain = await graphql({ url, key, query });
    const client = apollo.createClient({ url, key });
    const { gql } = await import("@apollo/client/core/index.js");
    const { data } = await client.query({ query: gql(query) });
    assert.equal(data.product.title, plain.product.title);
    assert.deepEqual(
      { amount: data.product.price.amount, currency: data.product.price.currency },
      plain.product.price,
    );
  });
});
