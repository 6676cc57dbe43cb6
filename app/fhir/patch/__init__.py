"""PATCH engines as pure functions on JSON dicts: RFC 6902 JSON Patch and FHIRPath Patch (R4 subset).

They raise FhirError: INVALID (400) for a malformed patch document, UNPROCESSABLE (422) for a patch that
cannot be applied to the resource (a failing test, a path that matches nothing, an unsupported expression).
"""
