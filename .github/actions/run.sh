#!/usr/bin/env bash
# Run one reconciler command for action.yml and set its outputs. The step fails unless
# the exit code is one of OK_EXIT_CODES; `exit-code` is set either way, so a later step
# (`if: ${{ !cancelled() }}`) can report what happened.
set -uo pipefail
read -ra command <<< "$COMMAND"
read -ra args <<< "$ARGS"
if [ -n "$PLAN_FILE" ]; then args+=(--out "$PLAN_FILE"); fi
out="${OUTPUT_FILE:-/dev/stdout}"
err="${ERROR_FILE:-/dev/null}"
reconciler "${command[@]}" "${args[@]}" > "$out" 2> >(tee "$err" >&2)
code=$?
wait  # for tee
echo "exit-code=$code" >> "$GITHUB_OUTPUT"
if [ -n "$PLAN_FILE" ] && [ "${command[0]}" = plan ] && { [ "$code" = 0 ] || [ "$code" = 2 ]; }; then
  # The digest and has-changes come from the saved plan; without them stage 2 would be
  # skipped as "no changes", so a plan that cannot be read fails the step.
  if [ ! -f "$PLAN_FILE" ] || ! reconciler ci plan-info "$PLAN_FILE"; then
    echo "::error::reconciler plan exited ${code} but ${PLAN_FILE} cannot be read: nothing can be applied from it"
    exit 1
  fi
  echo "plan-file=$PLAN_FILE" >> "$GITHUB_OUTPUT"
elif [ "$code" = 2 ]; then
  echo "has-changes=true" >> "$GITHUB_OUTPUT"
elif [ "$code" = 0 ] && [ "${command[0]}" = plan ]; then
  echo "has-changes=false" >> "$GITHUB_OUTPUT"
fi
case " $OK_EXIT_CODES " in
  *" $code "*) exit 0 ;;
esac
echo "::error::reconciler ${COMMAND} exited ${code} (this step accepts: ${OK_EXIT_CODES})"
exit 1
