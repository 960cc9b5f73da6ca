// The same storefront through Apollo Client, with the type policies Shopfront's schema needs.
//
// - The storefront answer is personal and new on every request (requestId, every slot's
//   recommendationId): it is fetched with "network-only", never answered from the cache,
//   or events would quote a stale recommendationId and attribution would silently break.
// - Types without an identity (Money, reasons, slots, cart lines, ...) have no `id`: Apollo
//   stores them inside their parent. `merge: true` lets two queries that select different
//   fields of the same Product's `price` merge instead of replacing each other (the
//   "Cache data may be lost" warning).
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";

import { STOREFRONT_QUERY, TRACK_EVENTS } from "./storefront.js";

const VALUES = [
  "Money",
  "Reason",
  "RecommendationItem",
  "RecommendationSlot",
  "CouponOffer",
  "PricedCart",
  "PricedCartLine",
  "CartLineError",
  "Degraded",
  "ServedExperiment",
];

export const typePolicies = {
  ...Object.fromEntries(VALUES.map((type) => [type, { keyFields: false, merge: true }])),
  // One answer per request, identified by nothing a later request shares.
  Storefront: { keyFields: false },
  Query: { fields: { storefront: { merge: false } } },
};

export function createClient({ url, key, fetchFn = fetch }) {
  return new ApolloClient({
    link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${key}` }, fetch: fetchFn }),
    cache: new InMemoryCache({ typePolicies }),
    defaultOptions: { query: { fetchPolicy: "network-only" } },
  });
}

const STOREFRONT = gql(STOREFRONT_QUERY);
const TRACK = gql(TRACK_EVENTS);

export async function fetchStorefront(client, input) {
  const { data } = await client.query({
    query: STOREFRONT,
    variables: { input },
    fetchPolicy: "network-only",
  });
  return data.storefront;
}

export async function trackEvents(client, events) {
  const { data } = await client.mutate({ mutation: TRACK, variables: { events } });
  return data.trackEvents;
}
