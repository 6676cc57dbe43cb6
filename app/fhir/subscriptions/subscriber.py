"""Who a subscription delivers for: the principal that registered it (app/fhir/stored_principals.py).

Delivery reads each notified version through the engine's vread in a context carrying the subscriber's
principal, so the scopes, the access policy and the audit apply exactly as to the subscriber's own read.
"""

from __future__ import annotations

from app.fhir.context import SystemPrincipal

# The worker records a subscription's failure on it (status "error") on the server's own account. That
# write keeps the endpoint as it is, even one the endpoint rules refuse now (that is why it failed).
DELIVERY_PRINCIPAL = SystemPrincipal("subscription-delivery", "mark a subscription whose delivery failed")
