// The portal's controller: sign-in and sign-out, the menu, and which view shows. Views are addressed by
// the URL's fragment (#henvisninger, #logg, #<panel id>), so links, the back button and bookmarks work.

import { createAccessLog } from "./accesslog.js";
import { createApi } from "./api.js";
import { el, formatDate, replace } from "./format.js";
import { isOffered, loadPanels, operationLabel, showPanel } from "./panels.js";
import { showReferrals } from "./referrals.js";

const SESSION_KEY = "helsebro-portal-session";
const FNR = "urn:oid:2.16.578.1.12.4.1.4.1";
const DNR = "urn:oid:2.16.578.1.12.4.1.4.2";
const $ = (id) => document.getElementById(id);

let session = readSession();
let panels = [];
let capability = null;
let navigated = false; // focus moves to a view's heading only when the user asked for the view
let greeting = ""; // said once the first view after signing in has loaded

const api = createApi(
  () => session && session.token,
  () => signOut("Økten din er utløpt. Logg inn på nytt.", true),
);

function readSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return stored && stored.expiresAt > Date.now() ? stored : null;
  } catch {
    return null;
  }
}

function setStatus(text) {
  $("status").textContent = text;
}

function setError(text) {
  const box = $("error");
  box.textContent = text || "";
  box.hidden = !text;
}

async function busy(container, message, done, work) {
  setError("");
  setStatus(message);
  container.setAttribute("aria-busy", "true");
  try {
    const result = await work();
    setStatus(typeof done === "function" ? done(result) : done);
  } catch (error) {
    setStatus("");
    setError(error.message || "Noe gikk galt.");
  } finally {
    container.removeAttribute("aria-busy");
  }
}

// -- sign-in ---------------------------------------------------------------------------------------------
async function showLogin() {
  showView("login");
  const response = await fetch("/portal/citizens", { headers: { Accept: "application/json" } }).catch(() => null);
  const available = Boolean(response && response.ok);
  $("login-available").hidden = !available;
  $("login-unavailable").hidden = available;
  if (!available) return;
  const citizens = await response.json();
  replace(
    $("citizen-list"),
    citizens.map((citizen, index) =>
      el(
        "div",
        { class: "choice" },
        el("input", { type: "radio", name: "citizen", id: `citizen-${citizen.patient}`, value: citizen.patient, checked: index === 0 }),
        el("label", { for: `citizen-${citizen.patient}` }, citizen.name, el("span", { class: "choice__detail" }, ` født ${formatDate(citizen.birthDate)}`)),
      ),
    ),
  );
}

async function signIn(event) {
  event.preventDefault();
  const chosen = new FormData($("login-form")).get("citizen");
  if (!chosen) {
    setError("Velg en innbygger å logge inn som.");
    return;
  }
  setError("");
  setStatus("Logger inn …");
  try {
    const grant = await api.post("/portal/dev-login", { patient: chosen });
    const token = grant.access_token;
    const patient = await createApi(() => token, () => {}).get(`/Patient/${encodeURIComponent(grant.patient)}`);
    const name = (patient.name || [])[0] || {};
    const pid = (patient.identifier || []).find((i) => i.system === FNR || i.system === DNR);
    session = {
      token,
      patient: grant.patient,
      name: [...(name.given || []), name.family].filter(Boolean).join(" ") || grant.patient,
      pid: pid ? pid.value : null,
      expiresAt: Date.now() + grant.expires_in * 1000,
    };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    setStatus(`Du er logget inn som ${session.name}.`);
    greeting = `Du er logget inn som ${session.name}.`;
    navigated = true;
    showSignedIn();
    if (window.location.hash === "#oversikt") route();
    else window.location.hash = "#oversikt";
  } catch (error) {
    setStatus("");
    setError(`Innloggingen mislyktes. ${error.message}`);
  }
}

/** Forgets the token and shows the sign-in; `message` is said as an error or as a status. */
function signOut(message, isError = false) {
  session = null;
  capability = null;
  sessionStorage.removeItem(SESSION_KEY);
  for (const id of ["referral-list", "access-log", "access-summary"]) replace($(id));
  for (const panel of panels) replace($(`panel-${panel.id}-content`));
  $("session").hidden = true;
  $("site-nav").hidden = true;
  history.replaceState(null, "", window.location.pathname);
  setError(isError ? message : "");
  setStatus(isError ? "" : message);
  showLogin().then(() => $("login-title").focus());
}

function showSignedIn() {
  $("session-name").textContent = session.name;
  $("greeting-name").textContent = session.name;
  $("session").hidden = false;
  $("site-nav").hidden = false;
}

// -- the panels of panels.json: a menu entry, a card and a view each --------------------------------------
function buildPanels() {
  for (const panel of panels) {
    $("nav-list").append(el("li", {}, el("a", { href: `#${panel.id}`, "data-view": panel.id }, panel.title)));
    $("service-cards").append(
      el(
        "li",
        { class: "card", "data-panel": panel.id },
        el("h3", { class: "card__title" }, el("a", { href: `#${panel.id}` }, panel.title)),
        el("p", {}, panel.description),
        el("p", { class: "card__status", id: `card-${panel.id}-status` }),
      ),
    );
    $("main").append(
      el(
        "section",
        { id: `view-${panel.id}`, class: "view", "aria-labelledby": `panel-${panel.id}-title`, hidden: true, "data-operation": panel.operation },
        el("h1", { id: `panel-${panel.id}-title`, tabindex: "-1" }, panel.title),
        el("p", {}, panel.description),
        el("p", { class: "technical" }, "Fylles av FHIR-operasjonen ", el("code", {}, operationLabel(panel)), "."),
        el("div", { id: `panel-${panel.id}-content`, class: "panel-content" }),
      ),
    );
  }
}

async function getCapability() {
  if (!capability) capability = await api.get("/metadata");
  return capability;
}

// -- views -----------------------------------------------------------------------------------------------
function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const anchor of document.querySelectorAll("#nav-list a")) {
    if (anchor.dataset.view === name) anchor.setAttribute("aria-current", "page");
    else anchor.removeAttribute("aria-current");
  }
  const heading = document.querySelector(`#view-${name} h1`);
  document.title = `${heading ? heading.textContent : "Innbyggerportal"} – Helsebro`;
  if (navigated && heading) heading.focus();
  navigated = false;
}

/** The sign-in's greeting, said (once) when the overview it leads to has loaded. */
function welcome() {
  const text = greeting;
  greeting = "";
  return text;
}

const LOADERS = {
  oversikt: () =>
    busy($("service-cards"), "Henter hvilke tjenester som er tilgjengelige …", welcome, async () => {
      const statement = await getCapability();
      for (const panel of panels) {
        const offered = isOffered(panel, statement);
        const status = $(`card-${panel.id}-status`);
        status.textContent = offered ? "Tilgjengelig" : "Ikke tilgjengelig ennå";
        status.dataset.offered = String(offered);
      }
    }),
  henvisninger: () =>
    busy($("referral-list"), "Henter henvisningene dine …", (n) => `Fant ${n} ${n === 1 ? "henvisning" : "henvisninger"}.`, () =>
      showReferrals(api, session, $("referral-list")),
    ),
  logg: () => {
    const log = createAccessLog(api, session, { log: $("access-log"), summary: $("access-summary"), more: $("access-more"), showOwn: $("show-own") });
    $("show-own").onchange = () => log.render();
    $("access-more").onclick = () => busy($("access-log"), "Henter flere oppslag …", "Flere oppslag er hentet.", () => log.load());
    replace($("access-log"));
    replace($("access-summary"));
    return busy($("access-log"), "Henter tilgangsloggen din …", "Tilgangsloggen er hentet.", () => log.load());
  },
};

function route() {
  if (!session) {
    showLogin();
    return;
  }
  showSignedIn();
  const wanted = window.location.hash.slice(1);
  const panel = panels.find((p) => p.id === wanted);
  const name = panel || LOADERS[wanted] ? wanted : "oversikt";
  showView(name);
  if (panel) {
    const content = $(`panel-${panel.id}-content`);
    busy(content, `Henter ${panel.title.toLowerCase()} …`, "", async () => showPanel(api, session, panel, await getCapability(), content));
  } else {
    LOADERS[name]();
  }
}

async function start() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Du er logget ut."));
  window.addEventListener("hashchange", () => {
    navigated = true;
    route();
  });
  try {
    panels = await loadPanels();
  } catch {
    setError("Kunne ikke laste oversikten over tjenestene.");
  }
  buildPanels();
  document.body.dataset.ready = "true";
  route();
}

start();
