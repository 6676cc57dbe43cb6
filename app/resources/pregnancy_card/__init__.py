"""The pregnancy health card pack (helsekort for gravide, issue 15): see README.md."""
