"""The storage queue names, in one place: function_app's bindings, the enqueuer and the doctor all use them.

Kept free of imports so function_app can read it at no cold-start cost.
"""

JOB_FAILURES = "job-failures"
# The Functions host moves a message here after maxDequeueCount failed deliveries; the queue function
# sends a message that can never work here itself.
JOB_FAILURES_POISON = f"{JOB_FAILURES}-poison"
# Failures the rules are unsure about, handed over with their claim so the model's wait never holds a slot of
# job-failures (shared/handover.py); its function finishes the decision.
JOB_FAILURES_LLM = "job-failures-llm"
JOB_FAILURES_LLM_POISON = f"{JOB_FAILURES_LLM}-poison"
