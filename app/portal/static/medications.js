// "Mine legemidler": the citizen's medication list, from GET Patient/{id}/$medication-list (a collection
// Bundle: the List first, then its MedicationStatements; app/resources/medication_list/). Each medicine
// with its name, its codes (ATC, FEST), the dosage, its status, whether the multidose pharmacy packs it,
// and a mark when it is free text, i.e. not from the national medicine register FEST.

import { resolver } from "./api.js";
import { conceptText, el, timeElement } from "./format.js";

const BASE = "http://helsebro.no/fhir/StructureDefinition";
const FREE_TEXT = `${BASE}/medication-free-text`;
const MULTIDOSE = `${BASE}/medication-multidose`;
const STRENGTH = `${BASE}/medication-strength`;
// Each code the citizen may be asked for, with the spellings the pack reads as the same system
// (app/resources/medication_list/codes.py, SYSTEM_ALIASES).
const CODES = [
  ["ATC-kode", ["http://www.whocc.no/atc", "urn:oid:2.16.578.1.12.4.1.1.7180"]],
  [
    "FEST-legemiddel",
    [
      "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare",
      "http://hl7.no/fhir/NamingSystem/festLegemiddelmerkevare",
      "http://hl7.no/fhir/NamingSystem/festLegemiddelMerkevare",
    ],
  ],
  [
    "Varenummer (FEST)",
    [
      "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning",
      "http://hl7.no/fhir/NamingSystem/festLegemiddelpakning",
      "http://hl7.no/fhir/NamingSystem/festLegemiddelPakning",
    ],
  ],
];
const STATUS = {
  active: "I bruk",
  intended: "Skal startes",
  "on-hold": "Midlertidig stoppet",
  stopped: "Seponert (stoppet)",
  completed: "Avsluttet",
  "not-taken": "Tas ikke",
  "entered-in-error": "Registrert ved en feil",
  unknown: "Ukjent",
};

function flag(resource, url) {
  return (resource.extension || []).some((e) => e.url === url && e.valueBoolean === true);
}

function strength(resource) {
  const found = (resource.extension || []).find((e) => e.url === STRENGTH && e.valueQuantity);
  const quantity = found && found.valueQuantity;
  return quantity && quantity.value !== undefined ? `${quantity.value} ${quantity.unit || quantity.code || ""}`.trim() : null;
}

function row(term, ...description) {
  return [el("dt", {}, term), el("dd", {}, ...description)];
}

function medicineItem(statement, listEntry, index) {
  const concept = statement.medicationCodeableConcept || {};
  const titleId = `legemiddel-${index}-title`;
  const status = statement.status || "unknown";
  const freeText = flag(statement, FREE_TEXT);
  const multidose = flag(statement, MULTIDOSE);
  const facts = [];
  for (const [label, systems] of CODES) {
    const coding = (concept.coding || []).find((c) => systems.includes(c.system) && c.code);
    if (coding) facts.push(row(label, el("code", {}, coding.code)));
  }
  if (strength(statement)) facts.push(row("Styrke", strength(statement)));
  const dosage = (statement.dosage || []).map((d) => d.text).filter(Boolean);
  facts.push(row("Dosering", dosage.length ? dosage.join("; ") : "Ikke oppgitt"));
  if (listEntry && listEntry.date) facts.push(row("Sist endret", timeElement(listEntry.date)));
  return el(
    "li",
    { class: "record", "data-kind": "legemiddel", "data-status": status, "data-multidose": String(multidose), "data-free-text": String(freeText) },
    el(
      "article",
      { "aria-labelledby": titleId },
      el("h3", { class: "record__title", id: titleId }, conceptText(concept) || "Legemiddel uten navn"),
      el(
        "p",
        { class: "badges" },
        el("span", { class: `badge badge--medication-${status === "active" ? "active" : "other"}` }, el("span", { class: "visually-hidden" }, "Status: "), STATUS[status] || status),
        multidose ? el("span", { class: "badge badge--multidose" }, "Multidose") : null,
        freeText ? el("span", { class: "badge badge--free-text" }, "Fritekst") : null,
      ),
      freeText ? el("p", { class: "record__note" }, "Skrevet inn som fritekst: ikke hentet fra legemiddelregisteret FEST.") : null,
      multidose ? el("p", { class: "record__note" }, "Pakkes i multidose (ferdig pakkede doseposer fra apoteket).") : null,
      el("dl", { class: "facts" }, facts),
    ),
  );
}

/** Nodes showing the $medication-list Bundle: the List's title, then its medicines in the List's order. */
export async function renderMedicationList(api, bundle) {
  const resources = (bundle.entry || []).map((e) => e.resource).filter(Boolean);
  const list = resources.find((r) => r.resourceType === "List") || {};
  const resolve = resolver(bundle);
  const items = (list.entry || [])
    .map((entry) => [resolve(entry.item), entry])
    .filter(([statement]) => statement && statement.resourceType === "MedicationStatement")
    .map(([statement, entry], i) => medicineItem(statement, entry, i));
  return [
    el("h2", {}, list.title || "Legemiddelliste"),
    items.length
      ? el("ul", { class: "records" }, items)
      : el("p", { class: "empty" }, "Ingen legemidler registrert i legemiddellisten din."),
  ];
}
