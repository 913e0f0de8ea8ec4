"""The learning loop: outcomes of the agent's reruns, people's feedback through signed links, and the rules
learned from corrections, which decide the next failure with the same fingerprint."""
