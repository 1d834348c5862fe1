# Every service has an owner: a non-empty `team` tag says who to call about it.
package main

import rego.v1

owner_tag := "team"

has_owner(s) if {
	owner := s.spec.tags[owner_tag]
	is_string(owner)
	owner != ""
}

deny contains {"msg": msg, "policy": "owner_tag", "service": s.metadata.name} if {
	some s in input.services
	not has_owner(s)
	msg := sprintf("%s has no owner: add the tag %s (tags: {%s: your-team})", [s.metadata.name, owner_tag, owner_tag])
}
