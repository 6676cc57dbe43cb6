// "Min kjernejournal": the citizen's core journal, from GET Patient/{id}/$summary (an IPS-shaped document
// Bundle, app/resources/core_journal/summary.py). Critical information is the core-journal pack's entries
// in the document's allergies and problems sections; vaccines are its immunizations section. Every entry
// shows where it came from: organisation, system, author and when it was recorded, as Kjernejournal
// does, so the citizen can tell whom to ask about an entry that is wrong.

import { resolver } from "./api.js";
import { conceptText, el, timeElement } from "./format.js";
import { HPR, ORGNR, createNames, lookUpNames } from "./registers.js";

const LOINC = "http://loinc.org";
// The document's sections by LOINC code (summary.py's SECTIONS).
const ALLERGIES = "48765-2";
const ALERTS = "104605-1";
const PROBLEMS = "11450-4";
const TREATMENTS = "47519-4";
const DEVICES = "46264-8";
// Where the core journal's entries stand, critical information first (allergies, alerts, conditions,
// ongoing treatments, implants).
const CRITICAL_SECTIONS = [ALLERGIES, ALERTS, PROBLEMS, TREATMENTS, DEVICES];
const IMMUNIZATIONS = "11369-6";
// The core-journal pack's marks (app/resources/core_journal/codes.py).
const ENTRY_TAG = "http://helsebro.no/fhir/CodeSystem/core-journal-tag";
const CATEGORY = "http://helsebro.no/fhir/CodeSystem/core-journal-category";
const SOURCE = "http://helsebro.no/fhir/StructureDefinition/core-journal-source";

const CRITICALITY = {
  high: "Høy (kan være livstruende)",
  low: "Lav",
  "unable-to-assess": "Ikke vurdert",
};
const VERIFICATION = {
  confirmed: "Bekreftet",
  unconfirmed: "Ikke bekreftet",
  provisional: "Foreløpig",
  differential: "Mulig",
  refuted: "Avkreftet",
  "entered-in-error": "Registrert ved en feil",
};
const IMMUNIZATION_STATUS = {
  completed: "Gitt",
  "not-done": "Ikke gitt",
  "entered-in-error": "Registrert ved en feil",
};

function code(concept) {
  const coding = ((concept && concept.coding) || [])[0];
  return coding ? coding.code : undefined;
}

/** The resources one section of the document references, in the document's order. */
function sectionResources(document, loinc) {
  const composition = (document.entry || []).map((e) => e.resource).find((r) => r && r.resourceType === "Composition");
  const section = ((composition && composition.section) || []).find((s) =>
    ((s.code && s.code.coding) || []).some((c) => c.system === LOINC && c.code === loinc),
  );
  const resolve = resolver(document);
  return ((section && section.entry) || []).map(resolve).filter(Boolean);
}

function tag(resource, system) {
  return ((resource.meta && resource.meta.tag) || []).find((t) => t.system === system);
}

function isEntry(resource) {
  const entryTag = tag(resource, ENTRY_TAG);
  return Boolean(entryTag && entryTag.code === "entry");
}

/** The sources a core-journal entry lists (one extension each), as plain objects. */
function entrySources(resource) {
  return (resource.extension || [])
    .filter((e) => e.url === SOURCE)
    .map((e) => {
      const parts = Object.fromEntries((e.extension || []).map((p) => [p.url, p]));
      const organisation = parts.organization && parts.organization.valueReference;
      return {
        orgnr: organisation && organisation.identifier && organisation.identifier.value,
        organisation: organisation && organisation.display,
        author: parts.author && parts.author.valueReference,
        system: parts.system && parts.system.valueString,
        recorded: parts.recorded && parts.recorded.valueDateTime,
      };
    });
}

/** An Immunization's one source, from its own elements: the performing organisation and person, the
 * system that wrote it (meta.source) and when it was recorded. */
function immunizationSources(resource) {
  const actors = (resource.performer || []).map((p) => p.actor).filter(Boolean);
  const isOrganisation = (a) => (a.reference || "").startsWith("Organization/") || (a.identifier && a.identifier.system === ORGNR);
  const organisation = actors.find(isOrganisation);
  return [
    {
      orgnr: organisation && organisation.identifier && organisation.identifier.value,
      organisation: organisation && (organisation.display || organisation.reference),
      author: actors.find((a) => !isOrganisation(a)),
      system: resource.meta && resource.meta.source,
      recorded: resource.recorded,
    },
  ];
}

function row(term, ...description) {
  return [el("dt", {}, term), el("dd", {}, ...description)];
}

function organisationText(source, names) {
  const name = (source.orgnr && names.org.get(source.orgnr)) || source.organisation;
  if (name && source.orgnr) return `${name} (org.nr. ${source.orgnr})`;
  return name || `Org.nr. ${source.orgnr}`;
}

function authorText(author, names) {
  const id = author.identifier || {};
  const hpr = id.system === HPR ? id.value : null;
  const name = author.display || (hpr && names.hpr.get(hpr));
  if (name && hpr) return `${name}, HPR-nr. ${hpr}`;
  return name || (hpr ? `HPR-nr. ${hpr}` : "Helsepersonell");
}

function sourceItem(source, names) {
  const facts = [];
  if (source.orgnr || source.organisation) facts.push(row("Virksomhet", organisationText(source, names)));
  if (source.system) facts.push(row("System", source.system));
  if (source.author) facts.push(row("Registrert av", authorText(source.author, names)));
  if (source.recorded) facts.push(row("Registrert", timeElement(source.recorded)));
  if (!facts.length) facts.push(row("Kilde", "Ikke oppgitt"));
  return el("li", { class: "source" }, el("dl", { class: "facts" }, facts));
}

function sourceList(sources, names) {
  return [
    el("h4", { class: "record__subtitle" }, sources.length === 1 ? "Kilde" : `Kilder (${sources.length})`),
    el("ul", { class: "sources" }, sources.map((s) => sourceItem(s, names))),
  ];
}

function record(kind, index, title, badge, facts, sources, names) {
  const titleId = `${kind}-${index}-title`;
  return el(
    "li",
    { class: "record", "data-kind": kind },
    el(
      "article",
      { "aria-labelledby": titleId },
      el("h3", { class: "record__title", id: titleId }, title),
      badge ? el("p", { class: "badge badge--critical" }, badge) : null,
      facts.length ? el("dl", { class: "facts" }, facts) : null,
      sourceList(sources, names),
    ),
  );
}

function criticalRecord(resource, index, names) {
  const facts = [];
  if (resource.criticality) facts.push(row("Alvorlighetsgrad", CRITICALITY[resource.criticality] || resource.criticality));
  const reactions = (resource.reaction || []).flatMap((r) => (r.manifestation || []).map(conceptText)).filter(Boolean);
  if (reactions.length) facts.push(row("Reaksjon", reactions.join(", ")));
  const verification = code(resource.verificationStatus);
  if (verification) facts.push(row("Status", VERIFICATION[verification] || verification));
  if (resource.onsetDateTime) facts.push(row("Oppstått", timeElement(resource.onsetDateTime)));
  const category = tag(resource, CATEGORY);
  const title = conceptText(resource.code) || conceptText(resource.type) || "Kritisk informasjon";
  return record("kritisk", index, title, category && (category.display || category.code), facts, entrySources(resource), names);
}

function vaccineRecord(resource, index, names) {
  const facts = [];
  if (resource.occurrenceDateTime) facts.push(row("Dato", timeElement(resource.occurrenceDateTime)));
  else if (resource.occurrenceString) facts.push(row("Dato", resource.occurrenceString));
  if (resource.status) facts.push(row("Status", IMMUNIZATION_STATUS[resource.status] || resource.status));
  const dose = ((resource.protocolApplied || [])[0] || {}).doseNumberPositiveInt;
  if (dose) facts.push(row("Dose", `${dose}. dose`));
  const title = conceptText(resource.vaccineCode) || "Vaksine";
  return record("vaksine", index, title, null, facts, immunizationSources(resource), names);
}

function part(title, items, empty) {
  return el(
    "section",
    { class: "panel-section" },
    el("h2", {}, title),
    items.length ? el("ul", { class: "records" }, items) : el("p", { class: "empty" }, empty),
  );
}

/** Nodes showing the $summary document: critical information, then vaccines, each entry with its
 * sources (organisation names looked up in the register first). */
export async function renderCoreJournal(api, document) {
  const critical = CRITICAL_SECTIONS.flatMap((loinc) => sectionResources(document, loinc)).filter(isEntry);
  const vaccines = sectionResources(document, IMMUNIZATIONS).filter((r) => r.resourceType === "Immunization");
  const sources = [...critical.flatMap(entrySources), ...vaccines.flatMap(immunizationSources)];
  const names = createNames();
  await lookUpNames(api, names, {
    orgnrs: sources.map((s) => s.orgnr),
    hprs: sources.map((s) => s.author && s.author.identifier && s.author.identifier.system === HPR && s.author.identifier.value),
  });
  return [
    part("Kritisk informasjon", critical.map((r, i) => criticalRecord(r, i, names)), "Ingen registrert kritisk informasjon."),
    part("Vaksiner", vaccines.map((r, i) => vaccineRecord(r, i, names)), "Ingen registrerte vaksiner."),
  ];
}
