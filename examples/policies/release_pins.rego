# Production release sets pin their versions: the `release` version set names the
# agent version and the state machine version it runs, so a new version reaches
# production only through a reviewed change to the manifest (null means "latest").
package main

import rego.v1

pinned_fields := ["agent_version_number", "service_hierarchical_state_machine_version_number"]

deny contains {"msg": msg, "policy": "release_pins", "service": s.metadata.name, "field": field} if {
	some s in input.services
	release := s.spec.version_sets.release
	some field in pinned_fields
	release[field] == null
	msg := sprintf("%s: the release version set must pin %s (null or omitted means latest)", [s.metadata.name, field])
}
