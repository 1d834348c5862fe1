"""amigo-reconciler: a declarative GitOps reconciler for Amigo services.

Package map (lowest layer first; docs/architecture.md draws it, and
tests/project/test_architecture.py fails when a module imports a higher layer):

- limits, diagnostics, yaml_diagnostics, gcpause: API limits (checked against the
  OpenAPI document), file:line:column diagnostics and the one "did you mean",
  positioned YAML → diagnostic (manifests and the emulator seed), GC pauses.
- model, declared: the data the stages pass along (desired / live state);
  a service field is one entry in model.py (docs/adding-a-field.md).
- manifests/: YAML → validated DesiredState: spec (a manifest rule goes here),
  positioned (reading files, values + positions), variables (`${VAR}`), loader.
- project: reconciler.yaml, the environments (organization, credentials' variable
  names, ${VAR} values, prune, paths, policy, mongo cluster).
- api/: the HTTP client: auth, pacing, retries, answers (an API call goes here).
- emulator/: an independent in-process / local Amigo API (its own reading of the
  API rules; an API rule goes in rules.py); redaction: the one place the API key is scrubbed from output.
- identity: which live service each manifest manages.
- diff: field-level Change between live and desired.
- live: read and normalize live state (no decisions).
- plan: the Plan types and the live fingerprint; planfile: the saved plan file
  (JSON, checksum, digest, sniffing).
- planner: desired + live → Plan, with its checks and order; decides what to read.
- applier: execute a Plan; convergence: did live state converge afterwards?
  rehearsal: apply a Plan first to an in-memory emulator copy of live state.
- policy/: Rego policies; verify: run simulation test sets; rollback: undo an
  apply's version set upserts after a failed verification; export: live →
  manifests or an emulator seed; promote: copy a version set in manifests;
  schema: the manifest's JSON Schema.
- render, render_verify, report: text, markdown, JSON and GitHub output.
- workflow: the sequences (read → plan; saved plan → stale check → apply →
  convergence; policies; export; verify): a new step goes here.
- connect: open the client (live API or emulator).
- github: the GitHub Actions steps' logic.
- cli/: one module per command (parse, call the workflow, render); launcher: the
  console script, answering --version before click loads.
"""

__version__ = "0.1.0"
