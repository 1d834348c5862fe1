package main

import rego.v1

release_pins_denied := {f | some f in deny; f.policy == "release_pins"}

pinned := {"metadata": {"name": "Pinned"}, "spec": {"version_sets": {"release": {
	"agent_version_number": 3,
	"service_hierarchical_state_machine_version_number": 5,
}}}}

floating := {"metadata": {"name": "Floating"}, "spec": {"version_sets": {
	"release": {"agent_version_number": null, "service_hierarchical_state_machine_version_number": 5},
	"canary": {"agent_version_number": null, "service_hierarchical_state_machine_version_number": null},
}}}

test_pinned_release_is_allowed if {
	count(release_pins_denied) == 0 with input.services as [pinned]
}

test_floating_release_agent_is_denied if {
	release_pins_denied == {{
		"msg": "Floating: the release version set must pin agent_version_number (null or omitted means latest)",
		"policy": "release_pins",
		"service": "Floating",
		"field": "agent_version_number",
	}} with input.services as [pinned, floating]
}

test_other_version_sets_may_float if {
	count(release_pins_denied) == 0 with input.services as [{"metadata": {"name": "C"}, "spec": {"version_sets": {"canary": {"agent_version_number": null}}}}]
}
