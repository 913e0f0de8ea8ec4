"""Incidents: failures of different jobs with one cause, grouped (key), stored (store, model), told once
(notices, send), and, for a transient cause outside the job, their reruns held, probed with one canary and
released when it succeeds (policy, drive). The pipeline calls `join` once per decision; the queue and the
timer drive the rest (drive.on_event, drive.sweep).
"""
