// Names for HPR and organisation numbers, from this server's Practitioner and Organization resources
// (public register data, readable by citizens). Shared by the access log and the core journal, which
// both get numbers where a citizen wants names.

import { matches } from "./api.js";

export const HPR = "urn:oid:2.16.578.1.12.4.1.4.4";
export const ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101";

/** An empty cache: HPR number -> name, organisation number -> name (null: asked, not found). */
export function createNames() {
  return { hpr: new Map(), org: new Map() };
}

export function humanName(name) {
  if (!name) return "";
  return name.text || [...(name.given || []), name.family].filter(Boolean).join(" ");
}

/** Looks up the numbers not asked before, one search per register; a failed look-up leaves the numbers
 * (names are a help, never a condition for showing anything). */
export async function lookUpNames(api, names, { hprs = [], orgnrs = [] }) {
  const searches = [
    ["Practitioner", HPR, new Set(hprs), names.hpr, (p) => humanName((p.name || [])[0])],
    ["Organization", ORGNR, new Set(orgnrs), names.org, (o) => o.name],
  ];
  await Promise.all(
    searches.map(async ([type, system, wanted, into, nameOf]) => {
      const values = [...wanted].filter((v) => v && !into.has(v));
      if (!values.length) return;
      for (const value of values) into.set(value, null); // asked once, found or not
      const query = new URLSearchParams({ identifier: values.map((v) => `${system}|${v}`).join(","), _count: "100" });
      try {
        for (const resource of matches(await api.get(`/${type}?${query}`))) {
          const id = (resource.identifier || []).find((i) => i.system === system);
          if (id && nameOf(resource)) into.set(id.value, nameOf(resource));
        }
      } catch {
        // the numbers are shown instead
      }
    }),
  );
}
