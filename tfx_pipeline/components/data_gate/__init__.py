"""DataGate: stops a run before Transform when the data breaks a declarative anomaly policy.

policy.py     the policy file's rules (fail or warn per anomaly kind and feature); TFX-free
gate.py       reads ExampleValidator's anomalies and drift, applies the policy, writes the report
structure.py  columns the schema declares that a span lacks or left empty; TFX-free
component.py  the TFX component wrapping gate.check
"""
