package main

import rego.v1

llm_denied := {f | some f in deny; f.policy == "llm_allowlist"}

with_llm(name) := {"metadata": {"name": "S"}, "spec": {"version_sets": {"release": {"llm_model_preferences": {"conversation": {"llm_name": name, "params": {}}}}}}}

test_approved_llm_is_allowed if {
	count(llm_denied) == 0 with input.services as [with_llm("openai_gpt-5.1-2025-11-13")]
}

test_unapproved_llm_is_denied if {
	some finding in llm_denied with input.services as [with_llm("openai_gpt-4.1-2025-04-14")]
	finding.service == "S"
	finding.version_set == "release"
}

test_no_preferences_is_allowed if {
	count(llm_denied) == 0 with input.services as [{"metadata": {"name": "S"}, "spec": {"version_sets": {"release": {"llm_model_preferences": {}}}}}]
}
