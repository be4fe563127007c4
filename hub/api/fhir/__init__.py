"""The FHIR read facade: read models as FHIR resources (R5 by default, R4B on request; JSON or XML).

- `wire`: content negotiation (`_format`, `Accept`, `fhirVersion`), validation with fhir.resources
  in the chosen release, ETag / Last-Modified / If-None-Match, OperationOutcome errors;
- `bundle`: searchset Bundles, OperationOutcome, paging and `_lastUpdated` parameters;
- one module per resource mapping (`device`, `places`, `stock`, `supply`, `task`, `audit`): pure
  functions of read-model rows, R5-shaped, with the R4B form where the releases differ;
- `capability`: the CapabilityStatement, built from what the routes (hub.api.routes.fhir_*) serve;
- `answer`: what the routes share (documented responses, a resource in the asked release).
"""
