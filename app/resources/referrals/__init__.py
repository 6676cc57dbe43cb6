"""Referrals (henvisning): the pure rules of the referral workflow, as a domain pack.

A referral is a ServiceRequest (intent order, category referral) driven by a Task whose focus is the
ServiceRequest. No database and no HTTP here: the lead wires these into FHIR operations.

- codes.py: CodeSystems (businessStatus, decision, priority, rejection reason, Task.output types) and their
  CodeSystem resources for publication.
- workflow.py: one pure function per action (receive, assess, forward, offer_assessment_conversation,
  accept, reject, give_appointment, hold, resume, start, complete, cancel); transitions.py holds the
  transition table, the guards and validate_update for client-supplied `PUT Task/{id}`.
- patient_view.py: the plain status for a citizen portal.
- routing.py: common referral intake rules as data, and their evaluation.
- waiting_times.py: Norwegian working days and assessment waiting-time figures.

See README.md for the transition table and the formats.
"""
