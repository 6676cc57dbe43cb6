// "Hvem har sett journalen min": the citizen's own AuditEvents (GET AuditEvent?patient=Patient/{id}),
// made readable: who (name, category, HPR number), which organisation (its name from the Organization
// register of this server), when, what and why; emergency access highlighted in colour and in words.

import { link, matches } from "./api.js";
import { el, formatDateTime, replace } from "./format.js";
import { HPR, createNames, lookUpNames } from "./registers.js";

const FNR = "urn:oid:2.16.578.1.12.4.1.4.1";
const DNR = "urn:oid:2.16.578.1.12.4.1.4.2";
const CATEGORY = "urn:oid:2.16.578.1.12.4.1.1.9060";
const ACCESS_BASIS = "http://helsebro.no/fhir/CodeSystem/access-basis";
const FLAGS = "http://helsebro.no/fhir/CodeSystem/audit-flag";
const PAGE_SIZE = 50;
const MAX_PAGES_PER_LOAD = 5; // when own look-ups are hidden, read on until something else shows

const PURPOSES = {
  TREAT: "Behandling",
  ETREAT: "Akutt behandling",
  PATRQT: "Du så på egne opplysninger",
  HOPERAT: "Drift av helsetjenesten",
};
const BASES = {
  "care-relation": "du er pasient der (tjenstlig behov)",
  emergency: "akuttilgang (nødrett)",
  "patient-consent": "samtykke fra deg",
};
const ACTIONS = {
  read: "Lest",
  vread: "Lest (tidligere versjon)",
  "search-type": "Søk",
  "search-system": "Søk",
  "history-instance": "Historikk lest",
  "history-type": "Historikk lest",
  "history-system": "Historikk lest",
  create: "Registrert",
  update: "Endret",
  patch: "Endret",
  delete: "Slettet",
  operation: "Oversikt hentet",
  transaction: "Registrert",
  batch: "Registrert",
};
const TYPES = {
  Patient: "personopplysninger",
  AllergyIntolerance: "allergi",
  Condition: "diagnose",
  Observation: "måling eller prøvesvar",
  MedicationStatement: "legemiddel",
  MedicationRequest: "resept",
  Immunization: "vaksine",
  Flag: "kritisk informasjon",
  Encounter: "kontakt eller innleggelse",
  EpisodeOfCare: "behandlingsforløp",
  ServiceRequest: "henvisning",
  Task: "henvisningsforløp",
  Appointment: "time",
  DocumentReference: "dokument",
  Procedure: "behandling eller inngrep",
  Consent: "samtykke eller sperring",
  RelatedPerson: "pårørende",
  CareTeam: "behandlingsteam",
};
const CATEGORIES = {
  LE: "Lege",
  SP: "Sykepleier",
  JO: "Jordmor",
  HP: "Helsefagarbeider",
  PS: "Psykolog",
  FT: "Fysioterapeut",
  TL: "Tannlege",
  AA: "Ambulansearbeider",
  FA1: "Provisorfarmasøyt",
  FA2: "Reseptarfarmasøyt",
  BI: "Bioingeniør",
  ET: "Ergoterapeut",
  VP: "Vernepleier",
};

function coding(concept, system) {
  return ((concept && concept.coding) || []).find((c) => !system || c.system === system);
}

/** The requesting user, or the system client that acted on its own (BALP: requestor true). */
function requestor(event) {
  return (event.agent || []).find((a) => a.requestor) || {};
}

function organisations(event) {
  return (event.agent || [])
    .filter((a) => coding(a.type) && coding(a.type).code === "PROV")
    .map((a) => ({ orgnr: a.who && a.who.identifier && a.who.identifier.value, subUnit: ((a.role || [])[0] || {}).text === "sub-unit" }))
    .filter((o) => o.orgnr);
}

export function isEmergency(event) {
  const tags = (event.meta && event.meta.tag) || [];
  if (tags.some((t) => t.system === FLAGS && t.code === "emergency-access")) return true;
  return (event.purposeOfEvent || []).some((p) => coding(p) && coding(p).code === "ETREAT");
}

function emergencyReason(event) {
  for (const entity of event.entity || []) {
    for (const detail of entity.detail || []) {
      if (detail.type === "emergency-reason" && detail.valueString) return detail.valueString;
    }
  }
  return null;
}

function isOwn(event, session) {
  const who = requestor(event).who;
  const id = who && who.identifier;
  return Boolean(id && (id.system === FNR || id.system === DNR) && id.value === session.pid);
}

/** Names for the HPR and organisation numbers of `events` (registers.js). */
async function lookUpEventNames(api, events, names) {
  const hprs = [];
  const orgnrs = [];
  for (const event of events) {
    const id = (requestor(event).who || {}).identifier;
    if (id && id.system === HPR) hprs.push(id.value);
    for (const org of organisations(event)) orgnrs.push(org.orgnr);
  }
  await lookUpNames(api, names, { hprs, orgnrs });
}

function whoCell(event, session, names) {
  const agent = requestor(event);
  const id = (agent.who && agent.who.identifier) || {};
  if (isOwn(event, session)) return [el("span", { class: "who__name" }, "Deg selv")];
  if (id.system === HPR) {
    const category = coding((agent.role || [])[0], CATEGORY);
    const name = (agent.who && agent.who.display) || names.hpr.get(id.value) || "Helsepersonell";
    const role = category ? CATEGORIES[category.code] || category.code : "Helsepersonell";
    return [el("span", { class: "who__name" }, name), el("span", { class: "who__detail" }, `${role}, HPR-nr. ${id.value}`)];
  }
  if (id.system === FNR || id.system === DNR) {
    const name = (agent.who && agent.who.display) || "En annen innbygger";
    return [el("span", { class: "who__name" }, name), el("span", { class: "who__detail" }, "med fullmakt eller foreldreansvar")];
  }
  if (id.value) {
    return [el("span", { class: "who__name" }, "Datasystem"), el("span", { class: "who__detail" }, agent.name || id.value)];
  }
  return [el("span", { class: "who__name" }, "Ukjent")];
}

function organisationCell(event, names) {
  const orgs = organisations(event);
  if (!orgs.length) return ["–"];
  return orgs.map((o) =>
    el(
      "span",
      { class: "org" },
      el("span", { class: "org__name" }, names.org.get(o.orgnr) || (o.subUnit ? "Avdeling" : "Virksomhet")),
      el("span", { class: "who__detail" }, `Org.nr. ${o.orgnr}`),
    ),
  );
}

function whatCell(event) {
  const subtype = (event.subtype || [])[0] || {}; // a Coding (AuditEvent.subtype is 0..* Coding)
  const action = ACTIONS[subtype.code] || "Oppslag";
  const resource = (event.entity || []).find((e) => e.role && e.role.code === "4");
  const type = resource && resource.what && resource.what.reference ? resource.what.reference.split("/")[0] : null;
  const general = subtype.code === "operation" ? "Oversikt hentet fra journalen din" : `${action} i journalen din`;
  const parts = [el("span", {}, type ? `${action}: ${TYPES[type] || type}` : general)];
  if (event.outcome && event.outcome !== "0") {
    parts.push(el("span", { class: "badge badge--refused" }, event.outcome === "4" ? "Nektet: ingen tilgang" : "Mislyktes"));
  }
  return parts;
}

function whyCell(event) {
  const agent = requestor(event);
  const purposes = [...(event.purposeOfEvent || []), ...(agent.purposeOfUse || [])];
  const purpose = purposes.map((p) => coding(p, "http://terminology.hl7.org/CodeSystem/v3-ActReason")).find(Boolean);
  const basis = purposes.map((p) => coding(p, ACCESS_BASIS)).find(Boolean);
  const parts = [el("span", {}, (purpose && PURPOSES[purpose.code]) || "Ikke oppgitt")];
  if (basis && BASES[basis.code] && basis.code !== "emergency") parts.push(el("span", { class: "who__detail" }, `Grunnlag: ${BASES[basis.code]}`));
  if (isEmergency(event)) {
    parts.push(el("strong", { class: "emergency-flag" }, el("span", { "aria-hidden": "true" }, "⚠ "), "Akuttilgang (nødrett)"));
    const reason = emergencyReason(event);
    if (reason) parts.push(el("span", { class: "emergency-reason" }, `Begrunnelse: ${reason}`));
    parts.push(el("span", { class: "who__detail" }, "Oppslaget blir kontrollert i etterkant."));
  }
  return parts;
}

function eventRow(event, session, names) {
  const emergency = isEmergency(event);
  return el(
    "tr",
    { class: emergency ? "access-row access-row--emergency" : "access-row", "data-emergency": emergency ? "true" : "false" },
    el("td", {}, el("time", { datetime: event.recorded }, formatDateTime(event.recorded))),
    el("td", { class: "who" }, whoCell(event, session, names)),
    el("td", {}, organisationCell(event, names)),
    el("td", {}, whatCell(event)),
    el("td", {}, whyCell(event)),
  );
}

/** The access log of the signed-in citizen: call load() to fetch more, render() after the own-toggle. */
export function createAccessLog(api, session, parts) {
  const state = { events: [], next: `/AuditEvent?${new URLSearchParams({ patient: `Patient/${session.patient}`, _sort: "-date", _count: String(PAGE_SIZE) })}` };
  const names = createNames();

  function visible() {
    return parts.showOwn.checked ? state.events : state.events.filter((e) => !isOwn(e, session));
  }

  function render() {
    const shown = visible();
    const emergencies = shown.filter(isEmergency).length;
    replace(
      parts.summary,
      shown.length
        ? `Viser ${shown.length} oppslag, nyeste først.` +
            (emergencies ? ` ${emergencies} av dem var med akuttilgang (nødrett).` : " Ingen av dem var med akuttilgang.")
        : "",
    );
    if (!shown.length) {
      replace(parts.log, el("p", { class: "empty" }, state.next ? "Ingen oppslag å vise ennå." : "Ingen har sett journalen din."));
    } else {
      const head = ["Når", "Hvem", "Virksomhet", "Hva", "Hvorfor"].map((h) => el("th", { scope: "col" }, h));
      replace(
        parts.log,
        el(
          "div",
          { class: "table-wrap", role: "region", "aria-label": "Tilgangslogg", tabindex: "0" },
          el(
            "table",
            { class: "access-table" },
            el("caption", {}, "Oppslag i journalen din"),
            el("thead", {}, el("tr", {}, head)),
            el("tbody", {}, shown.map((e) => eventRow(e, session, names))),
          ),
        ),
      );
    }
    parts.more.hidden = !state.next;
  }

  async function load() {
    let pages = 0;
    const before = visible().length;
    while (state.next && pages < MAX_PAGES_PER_LOAD) {
      const bundle = await api.get(state.next);
      const events = matches(bundle).filter((r) => r.resourceType === "AuditEvent");
      await lookUpEventNames(api, events, names);
      state.events.push(...events);
      state.next = link(bundle, "next");
      pages += 1;
      if (visible().length > before) break;
    }
    render();
    return visible().length;
  }

  return { load, render };
}
