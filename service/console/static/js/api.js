// The console's only way to the service: the GraphQL endpoint, with the merchant key.
// The key lives in this tab's sessionStorage only: never in a URL, a cookie or a log.

const KEY_ITEM = "shopfront.merchantKey";
const ENDPOINT = new URL("graphql", document.baseURI).href;

export class ApiError extends Error {
  constructor(message, code, errors) {
    super(message);
    this.code = code;
    this.errors = errors || [];
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

async function post(key, query, variables) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(`The service cannot be reached (${err.message}).`, "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The service answered HTTP ${response.status} without a GraphQL body.`, "HTTP");
  }
  return body;
}

function firstError(body) {
  const errors = body.errors || [];
  const first = errors[0];
  const code = first && first.extensions ? first.extensions.code : undefined;
  return { errors, first, code };
}

// Runs a query; throws ApiError on any error (the console never shows half an answer as whole).
export async function gql(query, variables) {
  const key = storedKey();
  if (!key) throw new ApiError("Not signed in.", "UNAUTHENTICATED");
  const body = await post(key, query, variables);
  const { errors, first, code } = firstError(body);
  if (errors.length) {
    if (code === "UNAUTHENTICATED") {
      forgetKey();
      window.dispatchEvent(new CustomEvent("console:signed-out", { detail: first.message }));
    }
    throw new ApiError(first.message, code, errors);
  }
  return body.data;
}

// Like gql, but returns {data, errors} so a screen can show what did arrive
// (the storefront answers with its cart null and an error when a line cannot be priced).
export async function gqlPartial(query, variables) {
  const key = storedKey();
  if (!key) throw new ApiError("Not signed in.", "UNAUTHENTICATED");
  const body = await post(key, query, variables);
  const { errors, first, code } = firstError(body);
  if (errors.length && !body.data) throw new ApiError(first.message, code, errors);
  return { data: body.data, errors };
}

// Checks the key with a merchant-only query before keeping it: a storefront key is refused.
export async function signIn(key) {
  const trimmed = (key || "").trim();
  if (!trimmed) throw new ApiError("Enter a merchant key.", "BAD_USER_INPUT");
  const body = await post(trimmed, "query ConsoleSignIn { plugins { name } }");
  const { first, code } = firstError(body);
  if (code === "FORBIDDEN") {
    throw new ApiError(
      "This is a storefront key. The console needs a merchant key (create one with: shopfront keys create --role merchant --name console).",
      code,
    );
  }
  if (code === "UNAUTHENTICATED") throw new ApiError("This key is not valid: it is unknown or revoked.", code);
  if (first) throw new ApiError(first.message, code);
  sessionStorage.setItem(KEY_ITEM, trimmed);
}
