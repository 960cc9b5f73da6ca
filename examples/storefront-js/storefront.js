// A Shopfront storefront client with nothing but fetch: ask for the page's answer, show it,
// and send events that quote the slot's recommendationId (so clicks and purchases are
// attributed to the recommendation that earned them). Works in browsers and in Node 18+.

export const STOREFRONT_QUERY = `
  query Storefront($input: StorefrontInput!) {
    storefront(input: $input) {
      requestId
      experiments { experiment variant }
      slots {
        name
        title
        recommendationId
        items {
          position
          score
          product { id title price { amount currency } }
          reasons { code text strategy }
        }
      }
      cart {
        lines { index productId quantity total { amount currency } }
        errors { index productId code message }
        subtotal { amount currency }
        total { amount currency }
      }
      degraded { strategy reason }
    }
  }
`;

export const TRACK_EVENTS = `
  mutation TrackEvents($events: [EventInput!]!) {
    trackEvents(events: $events) {
      accepted
      duplicates
      rejected
      results { index eventId status reason }
    }
  }
`;

/** A GraphQL error answer, with the codes Shopfront put in `extensions.code`. */
export class ShopfrontError extends Error {
  constructor(errors, status) {
    super(errors.map((e) => e.message).join("; "));
    this.name = "ShopfrontError";
    this.errors = errors;
    this.codes = errors.map((e) => e.extensions?.code);
    this.status = status;
  }
}

/** POST one operation; the data, or a ShopfrontError (every Shopfront error is JSON). */
export async function graphql({ url, key, query, variables = {}, fetchFn = fetch }) {
  const response = await fetchFn(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json;q=0.9",
      authorization: `Bearer ${key}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new ShopfrontError(body.errors, response.status);
  return body.data;
}

/** The storefront answer for one page view (never cache it: each has fresh ids). */
export async function fetchStorefront({ url, key, input, fetchFn }) {
  const data = await graphql({ url, key, query: STOREFRONT_QUERY, variables: { input }, fetchFn });
  return data.storefront;
}

/** A click on a slot item, quoting its recommendationId and 1-based position. */
export function clickEvent({ slot, item, sessionId, userId = null, pageType = "HOME", now = new Date() }) {
  return {
    eventId: `click-${slot.recommendationId}-${item.position}`,
    type: "CLICK",
    timestamp: now.toISOString(),
    sessionId,
    userId,
    productId: item.product.id,
    recommendationId: slot.recommendationId,
    position: item.position,
    pageType,
  };
}

export async function trackEvents({ url, key, events, fetchFn }) {
  const data = await graphql({ url, key, query: TRACK_EVENTS, variables: { events }, fetchFn });
  return data.trackEvents;
}

/** Integer minor units as text, without floating point: {amount: 9899, currency: "EUR"}
 * -> "98.99 EUR" (two decimals; pass `digits` for currencies with other minor units). */
export function formatMoney({ amount, currency }, digits = 2) {
  const sign = amount < 0 ? "-" : "";
  const text = String(Math.abs(amount)).padStart(digits + 1, "0");
  const major = digits ? text.slice(0, -digits) : text;
  const minor = digits ? `.${text.slice(-digits)}` : "";
  return `${sign}${major}${minor} ${currency}`;
}

/** The answer as plain text lines: what a page would render. */
export function describe(storefront) {
  const lines = [];
  for (const slot of storefront.slots) {
    lines.push(`${slot.title} (${slot.name})`);
    for (const item of slot.items) {
      const reason = item.reasons[0]?.text ?? "";
      lines.push(`  ${item.position}. ${item.product.title} — ${formatMoney(item.product.price)} — ${reason}`);
    }
  }
  if (storefront.cart) {
    lines.push(`Cart total: ${formatMoney(storefront.cart.total)}`);
    for (const error of storefront.cart.errors) lines.push(`  line ${error.index}: ${error.code}`);
  }
  return lines;
}
