// The panels the domain packs fill as they arrive (panels.json: one entry per panel, the only list of
// them). Each names the FHIR operation that fills it; /metadata says whether this server offers it. When
// it does, the panel calls it for the signed-in citizen and shows what comes back: with the operation's
// own view when there is one (RENDERERS: the core journal, the medication list, the pregnancy card), else
// generically: a document Bundle's Composition sections, a List's entries (alone, or first in a Bundle
// with its entries), any other Bundle's resources by type. A view may say in plain words what a 404 means
// for it (NOT_FOUND: no pregnancy recorded), instead of the error.

import { resolver } from "./api.js";
import { renderCoreJournal } from "./corejournal.js";
import { conceptText, el, formatDate, replace } from "./format.js";
import { renderMedicationList } from "./medications.js";
import { NO_PREGNANCY, renderPregnancyCard } from "./pregnancy.js";

// An operation's own view of its answer: (api, answer) -> nodes.
const RENDERERS = {
  "Patient/$summary": renderCoreJournal,
  "Patient/$medication-list": renderMedicationList,
  "Patient/$pregnancy-card": renderPregnancyCard,
};
// What a view says when its operation finds nothing for the citizen (404): a plain notice, not an error.
const NOT_FOUND = {
  "Patient/$pregnancy-card": NO_PREGNANCY,
};

const TYPE_TITLES = {
  AllergyIntolerance: "Allergier og intoleranser",
  Condition: "Diagnoser og tilstander",
  Flag: "Kritisk informasjon",
  Immunization: "Vaksiner",
  MedicationStatement: "Legemidler",
  MedicationRequest: "Resepter",
  Observation: "Målinger og prøvesvar",
  Procedure: "Behandlinger og inngrep",
  Encounter: "Kontakter",
  Appointment: "Timer",
  CarePlan: "Planer",
};

export async function loadPanels() {
  const response = await fetch("/portal/panels.json", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error("panels.json");
  return response.json();
}

/** The operation names the CapabilityStatement offers on `resourceType`. */
export function offeredOperations(capability, resourceType) {
  const rest = (capability.rest || []).find((r) => r.mode === "server") || {};
  const resource = (rest.resource || []).find((r) => r.type === resourceType) || {};
  return new Set((resource.operation || []).map((o) => o.name));
}

export function isOffered(panel, capability) {
  return offeredOperations(capability, panel.resourceType).has(panel.operation);
}

export function operationLabel(panel) {
  return `${panel.resourceType}/$${panel.operation}`;
}

/** A resource's display text: what it is about, a value, a date. */
export function displayText(resource) {
  if (!resource || typeof resource !== "object") return "";
  const main =
    conceptText(resource.code) ||
    conceptText(resource.medicationCodeableConcept) ||
    (resource.medicationReference && resource.medicationReference.display) ||
    conceptText(resource.vaccineCode) ||
    resource.title ||
    (typeof resource.name === "string" ? resource.name : "") ||
    resource.description ||
    (resource.text && resource.text.div ? narrative(resource.text.div) : "") ||
    resource.resourceType;
  const extra = [];
  const quantity = resource.valueQuantity;
  if (quantity && quantity.value !== undefined) extra.push(`${quantity.value} ${quantity.unit || quantity.code || ""}`.trim());
  if (resource.valueString) extra.push(resource.valueString);
  if (resource.valueCodeableConcept) extra.push(conceptText(resource.valueCodeableConcept));
  if (resource.dosage && resource.dosage[0] && resource.dosage[0].text) extra.push(resource.dosage[0].text);
  const when = resource.effectiveDateTime || resource.occurrenceDateTime || resource.recordedDate || resource.onsetDateTime || resource.date;
  if (typeof when === "string") extra.push(formatDate(when.slice(0, 10)));
  return extra.length ? `${main}: ${extra.join(", ")}` : main;
}

/** The text of an XHTML narrative, parsed inertly (no scripts run, nothing is inserted). */
function narrative(div) {
  const parsed = new DOMParser().parseFromString(div, "text/html");
  return (parsed.body.textContent || "").replace(/\s+/g, " ").trim();
}

function entryList(items) {
  if (!items.length) return el("p", { class: "empty" }, "Ingen opplysninger registrert.");
  return el("ul", { class: "entries" }, items.map((text) => el("li", {}, text)));
}

function sectionNodes(sections, resolve, level) {
  return (sections || []).map((section) => {
    const items = (section.entry || []).map((ref) => displayText(resolve(ref)) || ref.display || ref.reference);
    const empty = section.emptyReason ? conceptText(section.emptyReason) : null;
    return el(
      "section",
      { class: "panel-section" },
      el(`h${Math.min(level, 6)}`, {}, section.title || conceptText(section.code) || "Uten tittel"),
      items.length || !empty ? entryList(items) : el("p", { class: "empty" }, empty),
      sectionNodes(section.section, resolve, level + 1),
    );
  });
}

/** Nodes showing a Bundle, List, Parameters or any resource, with headings from `level` down. */
export function renderResult(result, level = 2) {
  if (!result || typeof result !== "object") return [entryList([])];
  if (result.resourceType === "Bundle") {
    const resources = (result.entry || []).map((e) => e.resource).filter(Boolean);
    const composition = resources.find((r) => r.resourceType === "Composition");
    if (composition) {
      return [
        composition.title ? el(`h${level}`, {}, composition.title) : null,
        sectionNodes(composition.section, resolver(result), level + (composition.title ? 1 : 0)),
      ];
    }
    if (resources[0] && resources[0].resourceType === "List") {
      // a List with its entries alongside ($medication-list): the List's title and entries, in its order
      const list = resources[0];
      const resolve = resolver(result);
      const items = (list.entry || []).map((e) => displayText(resolve(e.item)) || (e.item || {}).display || "");
      return [list.title ? el(`h${level}`, {}, list.title) : null, entryList(items)];
    }
    const byType = new Map();
    for (const resource of resources) {
      if (resource.resourceType === "OperationOutcome") continue;
      if (!byType.has(resource.resourceType)) byType.set(resource.resourceType, []);
      byType.get(resource.resourceType).push(displayText(resource));
    }
    if (!byType.size) return [entryList([])];
    return [...byType].map(([type, items]) =>
      el("section", { class: "panel-section" }, el(`h${level}`, {}, TYPE_TITLES[type] || type), entryList(items)),
    );
  }
  if (result.resourceType === "List") {
    const contained = new Map((result.contained || []).map((r) => [`#${r.id}`, r]));
    const items = (result.entry || []).map((e) => {
      const item = e.item || {};
      return displayText(contained.get(item.reference)) || item.display || item.reference || "";
    });
    return [result.title ? el(`h${level}`, {}, result.title) : null, entryList(items)];
  }
  if (result.resourceType === "Parameters") {
    return (result.parameter || []).map((p) =>
      el(
        "section",
        { class: "panel-section" },
        el(`h${level}`, {}, p.name),
        p.resource ? renderResult(p.resource, level + 1) : entryList([String(Object.entries(p).find(([k]) => k.startsWith("value"))?.[1] ?? "")]),
      ),
    );
  }
  return [entryList([displayText(result)])];
}

/** Fills a panel's content: "not available yet", or the operation's answer for the citizen. */
export async function showPanel(api, session, panel, capability, container) {
  if (!isOffered(panel, capability)) {
    replace(
      container,
      el(
        "p",
        { class: "notice", "data-offered": "false" },
        `Tjenesten «${panel.title}» er ikke tilgjengelig ennå. Når den kommer, ser du opplysningene her.`,
      ),
    );
    return false;
  }
  const label = operationLabel(panel);
  let result;
  try {
    result = await api.get(`/${panel.resourceType}/${encodeURIComponent(session.patient)}/$${panel.operation}`);
  } catch (error) {
    if (error.status !== 404 || !NOT_FOUND[label]) throw error;
    replace(container, el("p", { class: "notice", "data-offered": "true", "data-found": "false" }, NOT_FOUND[label]));
    return true;
  }
  const render = RENDERERS[label];
  const nodes = render ? await render(api, result) : renderResult(result);
  replace(container, el("div", { class: "panel-result", "data-offered": "true" }, nodes));
  return true;
}
