#!/usr/bin/env bash
# Every graph in graphs/ runs the way its header says. The header names the commands, from the repository
# root: `# Data: build/bin/make_synthetic_cohort ...` (graphs that read generated data) and
# `# Run: build/bin/flowrun run graphs/<name>.toml ...`. On a copy of graphs/ in a fresh work folder (graphs
# resolve relative paths against their own folder, so the data goes to <work>/runs/demo-data), each distinct
# Data command runs once, then each graph's Run command, with build/bin/ replaced by the binaries under test.
# Checks per graph: exit status 0; at least one result reported; every result (the `result: <stage>: <what>:
# <path>` lines and run_summary.json's "results") exists and is not older than the run; every file a
# summary's "## Files" section lists (mil_cv) exists and is from the run. Then (mode "full") the slide benchmark
# again with a --set: its features are restored, and mil_cv's copy of the resolved graph holds the override.
# Mode "quick" (the sanitizer build) leaves that rerun out: it repeats the run's code paths, a minute of the
# sanitizers' CI time, and restoring stored features is checked under them by features.kill_and_resume.
#
# usage: graph_headers_test.sh FLOWRUN MAKE_SYNTHETIC_COHORT SOURCE_ROOT WORK_FOLDER [full|quick]
set -u
flowrun=$1 synth=$2 root=$3 work=$4 mode=${5:-full}
rm -rf "$work"
mkdir -p "$work"
cp -r "$root/graphs" "$work/graphs"
cd "$work" || exit 1
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# A header command as an argument list, with the binaries under test in place of build/bin/.
command_of() {  # command_of TEXT -> the array `cmd`
  read -ra cmd <<<"$1"
  case ${cmd[0]} in
    build/bin/flowrun) cmd[0]=$flowrun ;;
    build/bin/make_synthetic_cohort) cmd[0]=$synth ;;
    *) return 1 ;;
  esac
}

# The data, once per distinct command (the graphs share one cohort).
mapfile -t data_commands < <(grep -h '^# Data: ' graphs/*.toml | sed 's/^# Data: //' | sort -u)
for line in "${data_commands[@]}"; do
  if ! command_of "$line"; then fail "data command '$line': expected build/bin/make_synthetic_cohort ..."; continue; fi
  begin=$(date +%s)
  if "${cmd[@]}" >data.log 2>&1; then ok "data ($(($(date +%s) - begin)) s): $line"
  else fail "data: $line"; sed 's/^/    /' data.log; fi
done

# is_fresh PATH START: PATH exists and was modified at or after START (seconds).
is_fresh() { [[ -e $1 ]] && (($(stat -c %Y "$1") >= $2)); }

# check_results NAME LOG START: the results a run printed and listed in its run_summary.json.
check_results() {
  local name=$1 log=$2 start=$3 output count=0
  output=$(sed -n 's/^outputs: //p' "$log" | tail -1)
  local -a paths=()
  mapfile -t paths < <(sed -n 's/^result: [^:]*: .*: \(\/.*\)$/\1/p' "$log")
  if [[ -n $output && -f $output/run_summary.json ]]; then
    local listed
    listed=$(python3 -c 'import json, sys
for r in json.load(open(sys.argv[1])).get("results", []): print(r["stage"] + "\t" + r["what"] + "\t" + r["path"])' \
      "$output/run_summary.json") || { fail "$name: run_summary.json does not parse"; return; }
    while IFS=$'\t' read -r stage what path; do
      [[ -z $stage ]] && continue
      count=$((count + 1))
      if ! grep -qxF "result: $stage: $what: $path" "$log"; then fail "$name: run_summary.json lists $stage: $what: $path, the run did not print it"; fi
      paths+=("$path")
    done <<<"$listed"
    ((count > 0)) || fail "$name: run_summary.json lists no results"
  else
    fail "$name: no run summary (outputs: '$output')"
  fi
  ((${#paths[@]} > 0)) || fail "$name: the run printed no 'result:' line"
  mapfile -t paths < <(printf '%s\n' "${paths[@]}" | sort -u | sed '/^$/d')
  local path stale=0
  for path in "${paths[@]}"; do
    if [[ $path != /* ]]; then fail "$name: result path '$path' is not absolute"; stale=1
    elif ! is_fresh "$path" "$start"; then fail "$name: result '$path' is missing or older than the run"; stale=1; fi
    # A summary that lists its folder's files (mil_cv): each one exists and is from this run.
    if [[ $path == *.md && -f $path ]] && grep -q '^## Files' "$path"; then
      local listed_file
      while read -r listed_file; do
        if ! is_fresh "$(dirname "$path")/$listed_file" "$start"; then
          fail "$name: '$path' lists '$listed_file', which is missing or older than the run"; stale=1
        fi
      done < <(sed -n '/^## Files/,$p' "$path" | sed -n 's/^- `\([^`]*\)`.*/\1/p')
    fi
  done
  ((stale == 0 && ${#paths[@]} > 0)) && ok "$name: ${#paths[@]} result(s), all from this run"
}

# run_graph NAME LOG COMMAND...: runs it, checks status and results.
run_graph() {
  local name=$1 log=$2; shift 2
  local start
  start=$(date +%s)
  "$@" >"$log" 2>&1
  local status=$?
  if ((status != 0)); then fail "$name: exit status $status: $*"; sed 's/^/    /' "$log" | tail -40; return; fi
  ok "$name: exit 0 in $(($(date +%s) - start)) s"
  check_results "$name" "$log" "$start"
}

for graph in graphs/*.toml; do
  name=$(basename "$graph" .toml)
  mapfile -t runs < <(sed -n 's/^# Run: //p' "$graph")
  if ((${#runs[@]} != 1)); then fail "$name: ${#runs[@]} '# Run:' lines in its header, expected one"; continue; fi
  if ! command_of "${runs[0]}" || [[ ${cmd[1]:-} != run || ${cmd[2]:-} != "$graph" ]]; then
    fail "$name: '# Run: ${runs[0]}' is not 'build/bin/flowrun run $graph ...'"; continue
  fi
  if grep -q '^[^#]*demo-data' "$graph" && ! grep -q '^# Data: ' "$graph"; then
    fail "$name: reads runs/demo-data but its header has no '# Data:' line"; continue
  fi
  run_graph "$name" "$name.log" "${cmd[@]}"
done

# A rerun with an override: the features are restored, and mil_cv's resolved graph is this run's.
if [[ $mode == full && -f graphs/slide_benchmark.toml ]]; then
  run_graph slide_benchmark-rerun slide_benchmark-rerun.log "$flowrun" run graphs/slide_benchmark.toml --set mil.epochs=3
  copy=runs/slide_benchmark/gated_attention_resnet50_trunc/resolved_graph.toml
  if grep -q '^epochs = 3$' "$copy" 2>/dev/null && cmp -s "$copy" runs/slide_benchmark/resolved_graph.toml; then
    ok "slide_benchmark-rerun: gated_attention_resnet50_trunc/resolved_graph.toml is the rerun's graph"
  else
    fail "slide_benchmark-rerun: $copy does not hold the rerun's graph (epochs = 3)"
  fi
fi

echo "$passed passed, $failed failed"
((failed == 0))
