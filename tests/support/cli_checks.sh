# Shared by the CLI test scripts (source it after setting $work): counted checks on a command's exit status
# and output. Each prints "ok NAME" or "FAIL NAME: ..." with the output; the script ends with
# `echo "$passed passed, $failed failed"`.
passed=0 failed=0
check() {  # check NAME EXPECTED_STATUS COMMAND... ; output in $work/out
  local name=$1 expected=$2; shift 2
  "$@" >"$work/out" 2>&1
  local status=$?
  if [[ $status -eq $expected ]]; then passed=$((passed + 1)); echo "ok $name"
  else failed=$((failed + 1)); echo "FAIL $name: status $status, expected $expected"; sed 's/^/    /' "$work/out"; fi
}
contains() {  # contains NAME TEXT : the last output contains TEXT
  if grep -qF -- "$2" "$work/out"; then passed=$((passed + 1)); echo "ok $1"
  else failed=$((failed + 1)); echo "FAIL $1: output lacks '$2'"; sed 's/^/    /' "$work/out"; fi
}
