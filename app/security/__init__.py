"""Security layer: authentication (JWT bearer, SMART v2 scopes), access policy, consent and audit.

The engine never imports this package; main.py installs it through the engine's hooks.
"""
