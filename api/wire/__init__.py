"""The wire shapes of the HTTP API, one module per area, as msgspec Structs: what `/schema/openapi.json`
documents for every request and answer body (api/apidoc.py turns them into the document's schemas).

Answers are `Wire` structs: named properties, and unknown ones allowed, so a field added later does not break
a generated client. Request bodies reuse the core's own Structs where it decodes them (strict: unknown fields
are 400)."""
