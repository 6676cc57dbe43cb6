// Small helpers: building DOM from data (text only, never HTML) and Norwegian dates.

const ZONE = "Europe/Oslo";
const DATE = new Intl.DateTimeFormat("nb-NO", { timeZone: ZONE, day: "2-digit", month: "2-digit", year: "numeric" });
const TIME = new Intl.DateTimeFormat("nb-NO", { timeZone: ZONE, hour: "2-digit", minute: "2-digit" });
const DAY_MS = 24 * 60 * 60 * 1000;

/** An element with attributes and children. Strings become text nodes: data never becomes markup. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Removes every child of `node` and adds `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** "2026-12-07" -> "07.12.2026" (a date has no time zone: it is not converted). */
export function formatDate(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  return match ? `${match[3]}.${match[2]}.${match[1]}` : formatDateTime(value);
}

/** An instant as Norwegian wall-clock time: "07.12.2026 kl. 09:30". */
export function formatDateTime(value) {
  const moment = new Date(value);
  if (!value || Number.isNaN(moment.getTime())) return value || "";
  return `${DATE.format(moment)} kl. ${TIME.format(moment)}`;
}

/** A <time> element for a FHIR date or instant. */
export function timeElement(value) {
  return el("time", { datetime: value }, formatDate(value));
}

/** Whole days from today (in Oslo) to the date `value` (YYYY-MM-DD): negative when it has passed. */
export function daysUntil(value) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(new Date());
  return Math.round((Date.parse(value) - Date.parse(today)) / DAY_MS);
}

/** "1 dag" / "3 dager" */
export function days(count) {
  return `${count} ${Math.abs(count) === 1 ? "dag" : "dager"}`;
}

/** The text of a CodeableConcept: its text, else the first coding's display, else its code. */
export function conceptText(concept) {
  if (!concept || typeof concept !== "object") return "";
  if (concept.text) return concept.text;
  const coding = (concept.coding || []).find((c) => c.display) || (concept.coding || [])[0];
  return coding ? coding.display || coding.code || "" : "";
}
