"""A report part's elements as `Field` trees: read, kept as `ext:plo-field` (codes as Volven codings),
and written again the same (pure)."""

from __future__ import annotations

from lxml import etree

from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from app.adapters.plo import fields
from app.adapters.plo.model import Field

DOC_NS = "http://www.kith.no/xmlstds/po/Innleggelsesrapport/2012-04-01"
PART = f"""<Sykepleierdokumentasjon xmlns="{fields.NS_PO}" xmlns:epj2="{fields.WRITTEN["epj2"]}"
  xmlns:m1="{fields.WRITTEN["m1"]}">
  <InfoFraSykepleier>
    <epj2:Journaltekst m1:informasjonskategori="Andre notater">
      <epj2:Overskriftskode V="8" DN="Sykepleiesammenfatning" S="2.16.578.1.12.4.1.1.9141"/>
      <epj2:Notat>- Nedsatt evne til å bevege seg&#13;
- Plaget av hovne bein</epj2:Notat>
    </epj2:Journaltekst>
    <Styrke V="2.5" U="mg"/>
  </InfoFraSykepleier>
</Sykepleierdokumentasjon>"""


def _part() -> Field:
    return fields.read(parse_xml(PART.encode()), DOC_NS)


def test_a_part_is_read_with_namespaces_by_key_and_text_as_written() -> None:
    part = _part()
    [info] = part.children
    note, strength = info.children
    assert (part.ns, part.name, info.ns) == ("po", "Sykepleierdokumentasjon", "po")
    assert (note.ns, note.name, note.attrs) == (
        "epj2",
        "Journaltekst",
        (("m1:informasjonskategori", "Andre notater"),),
    )
    assert note.children[1].text == "- Nedsatt evne til å bevege seg\r\n- Plaget av hovne bein"
    assert strength.attrs == (("U", "mg"), ("V", "2.5"))  # sorted: their order carries nothing


def test_codes_are_volven_codings_and_other_attributes_stay_attributes() -> None:
    ext = fields.to_ext(_part())
    journal = ext["extension"][1]["extension"][1]
    heading = journal["extension"][2]["extension"]
    assert heading[1] == {
        "url": "code",
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": "urn:oid:2.16.578.1.12.4.1.1.9141",
                    "code": "8",
                    "display": "Sykepleiesammenfatning",
                }
            ]
        },
    }
    strength = ext["extension"][1]["extension"][2]["extension"]
    assert [e["url"] for e in strength] == ["element", "attribute", "attribute"]


def test_a_part_kept_in_fhir_is_written_as_read() -> None:
    part = _part()
    assert fields.from_ext(fields.to_ext(part)) == part
    doc = etree.Element(f"{{{DOC_NS}}}Innleggelsesrapport")
    fields.write(doc, part, DOC_NS)
    again = fields.read(parse_xml(to_bytes(doc))[0], DOC_NS)
    assert again == part
