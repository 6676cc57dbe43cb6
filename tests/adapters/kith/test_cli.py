"""`python -m app.adapters.kith convert`: both directions, direction by content, XSD option, errors (exit 2,
one line on stderr, never the message content)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from app.adapters.kith.cli import main
from app.adapters.kith.dialogmelding import parse_dialogmelding
from app.adapters.kith.from_fhir import referral_from_bundle
from app.adapters.kith.henvisning import parse_henvisning
from app.adapters.kith.model import HenvisningVersion
from app.adapters.kith.xmlsafe import parse_xml, to_bytes
from tests.adapters.kith.conftest import REPO, fixture_bytes

V2 = "henvisning_v2_nytilstand.xml"
V2_VIDERE = "henvisning_v2_videre.xml"
V1_1 = "henvisning_v1_1_ny.xml"
V2_FNR = "14835712347"  # the (synthetic) patient of the v2 fixtures
NS_MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _fixture_file(tmp_path: Path, name: str) -> str:
    return _write(tmp_path, name, fixture_bytes(name))


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], code: str | None = None) -> str:
    """Exit 2, nothing on stdout, exactly one `error:` line on stderr (after any warnings); returns it."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines
    assert lines[-1].startswith("error: ")
    assert not any(line.startswith("error: ") for line in lines[:-1])
    if code is not None:
        assert lines[-1].startswith(f"error: {code} ")
    return lines[-1]


# -- XML -> Bundle ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [V2, V2_VIDERE, V1_1])
def test_xml_to_bundle_on_stdout(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", _fixture_file(tmp_path, name)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith('{\n  "resourceType": "Bundle"')  # pretty-printed
    bundle = json.loads(out)
    assert bundle["type"] == "transaction"
    assert referral_from_bundle(bundle) == parse_henvisning(fixture_bytes(name))


def test_bundle_json_is_utf8_not_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "out.json"
    assert main(["convert", _fixture_file(tmp_path, V2), "-o", str(out_file)]) == 0
    assert capsys.readouterr() == ("", "")
    data = out_file.read_bytes()
    assert "Øvrebø".encode() in data
    assert b"\\u00d8" not in data


def test_latin1_v1_message_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert b'encoding="ISO-8859-1"' in fixture_bytes(V1_1)
    assert main(["convert", _fixture_file(tmp_path, V1_1)]) == 0
    assert "Ærø" in capsys.readouterr().out


# -- Bundle -> XML ------------------------------------------------------------------------------------------
def _bundle_file(tmp_path: Path, name: str) -> str:
    out = tmp_path / f"{name}.json"
    assert main(["convert", _fixture_file(tmp_path, name), "-o", str(out)]) == 0
    return str(out)


@pytest.mark.parametrize(
    ("to", "version"),
    [
        ([], HenvisningVersion.V2_0),
        (["--to", "2.0"], HenvisningVersion.V2_0),
        (["--to", "1.1"], HenvisningVersion.V1_1),
    ],
)
def test_bundle_to_xml(
    to: list[str], version: HenvisningVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle_file(tmp_path, V2)
    capsys.readouterr()
    assert main(["convert", bundle, *to]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    again = parse_henvisning(out.encode())
    assert again.version is version
    assert again.document_id == parse_henvisning(fixture_bytes(V2)).document_id


@pytest.mark.parametrize(("name", "to"), [(V2, "2.0"), (V2_VIDERE, "2.0"), (V1_1, "1.1")])
def test_round_trip_gives_the_same_referral(
    name: str, to: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml_out = tmp_path / "again.xml"
    assert main(["convert", _bundle_file(tmp_path, name), "--to", to, "-o", str(xml_out)]) == 0
    assert capsys.readouterr() == ("", "")
    assert parse_henvisning(xml_out.read_bytes()) == parse_henvisning(fixture_bytes(name))


def test_direction_follows_content_not_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml_named_json = _write(tmp_path, "message.json", fixture_bytes(V2))
    assert main(["convert", xml_named_json]) == 0
    bundle_text = capsys.readouterr().out
    assert json.loads(bundle_text)["resourceType"] == "Bundle"
    json_named_xml = _write(tmp_path, "bundle.xml", b"\xef\xbb\xbf \n" + bundle_text.encode())  # BOM, blanks
    assert main(["convert", json_named_xml]) == 0
    assert parse_henvisning(capsys.readouterr().out.encode()) == parse_henvisning(fixture_bytes(V2))


def test_stdin_and_stdout_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(fixture_bytes(V1_1))))
    assert main(["convert", "-", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert referral_from_bundle(json.loads(out)) == parse_henvisning(fixture_bytes(V1_1))


def test_to_is_ignored_for_xml_input_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", _fixture_file(tmp_path, V2), "--to", "1.1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["resourceType"] == "Bundle"
    assert err.startswith("warning: --to")


def test_module_runs_as_a_subprocess_round_trip(tmp_path: Path) -> None:
    """XML -> JSON -> XML through `python -m app.adapters.kith convert`, for 2.0 and for 1.1."""
    for name, to in ((V2, "2.0"), (V1_1, "1.1")):
        source = _fixture_file(tmp_path, name)
        as_json = subprocess.run(
            [sys.executable, "-m", "app.adapters.kith", "convert", source],
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert (as_json.returncode, as_json.stderr) == (0, b""), name
        bundle = _write(tmp_path, f"{name}.json", as_json.stdout)
        as_xml = subprocess.run(
            [sys.executable, "-m", "app.adapters.kith", "convert", bundle, "--to", to],
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert (as_xml.returncode, as_xml.stderr) == (0, b""), name
        assert parse_henvisning(as_xml.stdout) == parse_henvisning(fixture_bytes(name)), name


# -- XSD ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xsd_dir(legacy: Path) -> Path:
    return legacy / "xsd"


def test_xsd_validation_of_input_and_output(
    xsd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.json"
    assert main(["convert", _fixture_file(tmp_path, V2), "--xsd-dir", str(xsd_dir), "-o", str(out)]) == 0
    assert main(["convert", str(out), "--xsd-dir", str(xsd_dir)]) == 0
    stdout, err = capsys.readouterr()
    assert err == ""
    assert parse_henvisning(stdout.encode()) == parse_henvisning(fixture_bytes(V2))


def test_skipped_xsd_validation_is_a_warning(
    xsd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory without the Henvisning schemas cannot validate 1.1: warned, every time."""
    partial = tmp_path / "xsd"
    shutil.copytree(xsd_dir / "felleskomponenter", partial / "felleskomponenter")
    for _ in range(2):
        assert main(["convert", _fixture_file(tmp_path, V1_1), "--xsd-dir", str(partial)]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["resourceType"] == "Bundle"
        assert err.startswith("warning: XSD validation of the input skipped: ")
        assert len(err.splitlines()) == 1


def test_xsd_invalid_input_is_t02(xsd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = parse_xml(fixture_bytes(V2))
    info = root.find(f"{{{NS_MSGHEAD}}}MsgInfo")
    assert info is not None
    etree.SubElement(info, f"{{{NS_MSGHEAD}}}Unexpected").text = V2_FNR
    line = _fails(
        capsys, ["convert", _write(tmp_path, "bad.xml", to_bytes(root)), "--xsd-dir", str(xsd_dir)], "T02"
    )
    assert V2_FNR not in line


def test_missing_xsd_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(capsys, ["convert", _fixture_file(tmp_path, V2), "--xsd-dir", str(tmp_path / "nope")])
    assert "--xsd-dir" in line


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"garbage, not a message at all\x00\xff", "T01"),
        (b"", "T01"),
        (b"<MsgHead><unclosed></MsgHead>", "T01"),
        (BILLION_LAUGHS, "T99"),
        (b'<?xml version="1.0"?><Other xmlns="urn:x"/>', "T10"),
    ],
    ids=["garbage", "empty", "not-well-formed", "billion-laughs", "other-message"],
)
def test_unacceptable_xml_exits_2_with_its_apprec_code(
    data: bytes, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _fails(capsys, ["convert", _write(tmp_path, "in.xml", data)], code)
    assert "lol" not in line
    assert "garbage" not in line


def test_size_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["convert", _fixture_file(tmp_path, V2), "--max-bytes", "1000"], "T99")


def test_errors_never_show_patient_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A message without the patient's name: E32, and neither the fødselsnummer nor any name in the line."""
    root = parse_xml(fixture_bytes(V2))
    patient = root.find(f"{{{NS_MSGHEAD}}}MsgInfo/{{{NS_MSGHEAD}}}Patient")
    assert patient is not None
    for tag in ("FamilyName", "GivenName"):
        element = patient.find(f"{{{NS_MSGHEAD}}}{tag}")
        assert element is not None
        patient.remove(element)
    line = _fails(capsys, ["convert", _write(tmp_path, "in.xml", to_bytes(root))], "E32")
    for secret in (V2_FNR, "Øvrebø", "Testbakken"):
        assert secret not in line


def _bundle(tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(Path(_bundle_file(tmp_path, V2)).read_bytes())
    return result


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{ not json", "not valid JSON"),
        (b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}', "no ServiceRequest"),
    ],
    ids=["not-json", "not-a-bundle", "no-service-request"],
)
def test_bad_json_input_exits_2(
    data: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _fails(capsys, ["convert", _write(tmp_path, "in.json", data)])
    assert expected in line


def test_unmappable_bundle_names_the_failure_not_the_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _bundle(tmp_path)
    capsys.readouterr()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"]["authoredOn"] = f"not-a-date-{V2_FNR}"
    line = _fails(capsys, ["convert", _write(tmp_path, "bad.json", json.dumps(bundle).encode())])
    assert "cannot be written as Henvisning 2.0" in line
    assert V2_FNR not in line


def test_unreadable_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(capsys, ["convert", str(tmp_path / "missing.xml")])
    assert "cannot read" in line


@pytest.mark.parametrize(
    "argv",
    [[], ["convert"], ["convert", "a.xml", "--to", "3.0"], ["frobnicate", "a.xml"]],
    ids=["no-command", "no-input", "bad-version", "unknown-command"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dialogmelding_v1_0_foresporsel.xml", "dialogmelding_v1_0_svar.xml"])
def test_dialogmelding_round_trip(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / name
    source.write_bytes(fixture_bytes(name))
    bundle_out, xml_out = tmp_path / "b.json", tmp_path / "again.xml"
    assert main(["convert", str(source), "-o", str(bundle_out)]) == 0
    assert json.loads(bundle_out.read_text())["type"] == "transaction"
    assert main(["convert", str(bundle_out), "-o", str(xml_out)]) == 0
    assert capsys.readouterr() == ("", "")
    again = parse_dialogmelding(parse_xml(xml_out.read_bytes()))
    assert again == parse_dialogmelding(parse_xml(fixture_bytes(name)))
