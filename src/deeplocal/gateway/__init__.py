"""The gateway: who is calling (keys, principals), may they (scopes, models, limits), what is in it
(PII), and the record of it (usage ledger, audit). `service.Gateway` is the facade the API calls."""
