# Only approved LLMs: every LLM a version set prefers is on the allow list.
package main

import rego.v1

approved_llms := {
	"openai_gpt-5.1-2025-11-13",
	"azure_gpt-4.1-2025-04-14",
}

deny contains {"msg": msg, "policy": "llm_allowlist", "service": s.metadata.name, "version_set": set_name} if {
	some s in input.services
	some set_name, version_set in s.spec.version_sets
	some purpose, preference in version_set.llm_model_preferences
	not preference.llm_name in approved_llms
	msg := concat("", [
		sprintf("%s: version set %s uses LLM %s for %s", [s.metadata.name, set_name, preference.llm_name, purpose]),
		", which is not on the approved list (", concat(", ", sort(approved_llms)), ")",
	])
}
