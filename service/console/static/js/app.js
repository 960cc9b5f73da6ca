// The console shell: sign-in, navigation between screens (hash routes), sign-out.
import { forgetKey, signIn, storedKey } from "./api.js";
import { clear, errorBox, field, h } from "./ui.js";
import * as catalog from "./catalog.js";
import * as experiments from "./experiments.js";
import * as models from "./models.js";
import * as offers from "./offers.js";
import * as preview from "./preview.js";

const SCREENS = { preview, experiments, offers, models, catalog };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
let generation = 0; // a newer navigation makes an older screen's late answer irrelevant

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { name: SCREENS[name] ? name : "preview", params: rest.map(decodeURIComponent) };
}

function showSignIn(message) {
  nav.hidden = true;
  signOutButton.hidden = true;
  const input = h("input", {
    id: "merchant-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const status = h("div", { id: "sign-in-status", "aria-live": "polite" });
  if (message) status.append(h("p", { class: "notice" }, message));
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card sign-in", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", {}, "The console uses the merchant key of this shop. It is kept in this tab only and forgotten when the tab closes."),
    field("Merchant key", input),
    button,
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    clear(status, h("p", {}, "Checking the key…"));
    try {
      await signIn(input.value);
      input.value = "";
      render();
    } catch (err) {
      clear(status, errorBox(err));
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  clear(main, form);
  input.focus();
}

async function render() {
  if (!storedKey()) {
    showSignIn();
    return;
  }
  nav.hidden = false;
  signOutButton.hidden = false;
  const { name, params } = route();
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const mine = ++generation;
  main.focus({ preventScroll: true }); // screen readers start at the new screen
  const screen = h("div", { class: `screen screen-${name}`, "data-screen": name });
  clear(main, screen);
  try {
    await SCREENS[name].render(screen, params, () => mine === generation);
  } catch (err) {
    if (mine === generation) screen.append(errorBox(err));
  }
}

signOutButton.addEventListener("click", () => {
  forgetKey();
  location.hash = "";
  showSignIn("Signed out.");
});
window.addEventListener("console:signed-out", (event) => showSignIn(event.detail));
window.addEventListener("hashchange", render);
render();
