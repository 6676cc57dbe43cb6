"""Resource -> index rows, computed once at write time and stored in the same transaction."""

from __future__ import annotations

from typing import Any

from app.fhir.registry import ResourceType
from app.fhir.search.hashing import hash64
from app.store.repository import TokenRow


def token_row(res_type: str, param: str, system: str | None, code: str | None) -> TokenRow:
    sys_text = system or ""
    code_text = code or ""
    return TokenRow(
        param=param,
        system=system,
        code=code,
        hash_value=hash64(res_type, param, code_text),
        hash_sys_value=hash64(res_type, param, sys_text, code_text),
        hash_sys=hash64(res_type, param, sys_text),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _identifier_tokens(res_type: str, param: str, value: Any) -> list[TokenRow]:
    rows = []
    for identifier in _as_list(value):
        if isinstance(identifier, dict) and (identifier.get("value") or identifier.get("system")):
            rows.append(token_row(res_type, param, identifier.get("system"), identifier.get("value")))
    return rows


def token_rows(rtype: ResourceType, resource: dict[str, Any]) -> list[TokenRow]:
    rows: list[TokenRow] = []
    for param in rtype.search_params.values():
        if param.type == "token" and param.path == "identifier":
            rows.extend(_identifier_tokens(rtype.name, param.code, resource.get(param.path)))
    # the same token twice in one resource needs one row only
    return list({(r.hash_sys_value, r.param): r for r in rows}.values())
