package main

import rego.v1

owner_denied := {f | some f in deny; f.policy == "owner_tag"}

test_owned_service_is_allowed if {
	count(owner_denied) == 0 with input.services as [{"metadata": {"name": "A"}, "spec": {"tags": {"team": "growth"}}}]
}

test_missing_tags_are_denied if {
	count(owner_denied) == 1 with input.services as [{"metadata": {"name": "A"}, "spec": {}}]
}

test_null_or_empty_owner_is_denied if {
	count(owner_denied) == 2 with input.services as [
		{"metadata": {"name": "A"}, "spec": {"tags": {"team": null}}},
		{"metadata": {"name": "B"}, "spec": {"tags": {"team": ""}}},
	]
}

test_whole_input_mock_as_conftest_writes_it if {
	count(owner_denied) == 1 with input as {"services": [{"metadata": {"name": "A"}, "spec": {"tags": {"tier": "gold"}}}]}
}
