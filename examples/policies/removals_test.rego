package main

import rego.v1

removals_denied := {f.msg | some f in deny; f.policy == "removals"}

deactivate_a := {"kind": "deactivate", "service": "A", "version_set": null}

deactivate_b := {"kind": "deactivate", "service": "B", "version_set": null}

delete_b_x := {"kind": "delete", "service": "B", "version_set": "x"}

test_one_removal_is_allowed if {
	count(removals_denied) == 0 with input.operations as [deactivate_a] with input.targets as []
}

test_two_removals_are_denied if {
	removals_denied == {"this plan removes 2 things (deactivate A, delete version set x of B); at most 1 per plan unless it is targeted with --target"} with input.operations as [deactivate_a, delete_b_x]
		with input.targets as []
}

test_targeted_plan_may_remove_more if {
	count(removals_denied) == 0 with input.operations as [deactivate_a, deactivate_b] with input.targets as ["A", "B"]
}

test_deactivation_warns if {
	count(warn) == 1 with input.operations as [deactivate_a] with input.targets as []
}
