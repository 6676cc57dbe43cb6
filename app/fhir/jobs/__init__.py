"""Asynchronous jobs (the FHIR asynchronous request pattern): $reindex with Prefer: respond-async and
$export. A kick-off stores the job and answers 202 with a status URL; a worker runs the job's steps as the
principal that started it (spec.py), one process at a time under a database lease (worker.py)."""
