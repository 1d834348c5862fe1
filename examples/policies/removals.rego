# At most a few deletions or deactivations per plan, unless the plan is targeted
# (`--target NAME`): a large removal is a deliberate, named act, not a side effect.
package main

import rego.v1

max_removals := 1

removals := [sprintf("%s %s", [op.kind, name]) |
	some op in input.operations
	op.kind in {"delete", "deactivate"}
	name := removal_name(op)
]

removal_name(op) := sprintf("version set %s of %s", [op.version_set, op.service]) if op.version_set != null

removal_name(op) := op.service if op.version_set == null

deny contains {"msg": msg, "policy": "removals"} if {
	count(removals) > max_removals
	count(input.targets) == 0
	msg := concat("", [
		sprintf("this plan removes %d things (", [count(removals)]),
		concat(", ", removals),
		sprintf("); at most %d per plan unless it is targeted with --target", [max_removals]),
	])
}

warn contains {"msg": sprintf("%s will be deactivated", [op.service]), "policy": "removals", "service": op.service} if {
	some op in input.operations
	op.kind == "deactivate"
}
