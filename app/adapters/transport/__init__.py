"""Transports of KITH messages besides the HTTP route: AMQP (amqp.py) to the national message service."""
