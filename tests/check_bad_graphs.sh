#!/usr/bin/env bash
# Checks flowrun's diagnostics against a corpus of invalid graph files.
#
# usage: check_bad_graphs.sh FLOWRUN CORPUS_DIR
#
# Every CORPUS_DIR/*.toml states what flowrun must report, in comment lines:
#   # expect: LINE: SUBSTRING   one diagnostic at 1-based LINE (0: a diagnostic without line:column,
#                               such as those of --set overrides) whose message (the text after
#                               "error: ") contains SUBSTRING
#   # set: KEY=VALUE            passed as --set KEY=VALUE (one per line, in order)
# For each file this runs `FLOWRUN validate FILE --set ...` and checks that the exit status is 2, that
# each expectation is met by exactly as many diagnostics as there are identical expect lines (normally
# one), and that flowrun printed exactly as many diagnostics as the file has expect lines.
# Prints "ok FILE" or "FAIL FILE: reason" per file, then "N passed, M failed"; exits 1 if any failed
# (or if the corpus is empty).
set -u

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FLOWRUN CORPUS_DIR" >&2
  exit 64
fi
flowrun=$1
corpus=$2
if [[ ! -x $flowrun ]]; then
  echo "$0: '$flowrun' is not an executable" >&2
  exit 64
fi
if [[ ! -d $corpus ]]; then
  echo "$0: '$corpus' is not a folder" >&2
  exit 64
fi

# Kill a hung flowrun rather than hang the test suite.
runner=()
if command -v timeout >/dev/null 2>&1; then runner=(timeout 60); fi

passed=0
failed=0

check_file() {
  local file=$1
  local -a sets=() expect_lines=() expect_subs=()
  local line

  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    if [[ $line =~ ^#\ expect:\ ([0-9]+):\ (.*)$ ]]; then
      expect_lines+=("$((10#${BASH_REMATCH[1]}))")
      expect_subs+=("${BASH_REMATCH[2]}")
    elif [[ $line =~ ^#\ set:\ (.+)$ ]]; then
      sets+=(--set "${BASH_REMATCH[1]}")
    fi
  done <"$file"

  if [[ ${#expect_lines[@]} -eq 0 ]]; then
    reason="no '# expect: LINE: SUBSTRING' lines"
    return 1
  fi

  local output status
  output=$("${runner[@]}" "$flowrun" validate "$file" "${sets[@]}" 2>&1)
  status=$?
  if [[ $status -ne 2 ]]; then
    reason="exit status $status, expected 2; output: ${output//$'\n'/ | }"
    return 1
  fi

  # Each diagnostic as LINE<TAB>MESSAGE (LINE 0: none was printed).
  local -a diag_lines=() diag_msgs=()
  while IFS= read -r line; do
    if [[ $line =~ ^(.*):([0-9]+):([0-9]+):\ error:\ (.*)$ ]]; then
      diag_lines+=("$((10#${BASH_REMATCH[2]}))")
      diag_msgs+=("${BASH_REMATCH[4]}")
    elif [[ $line =~ ^(.*):\ error:\ (.*)$ ]]; then
      diag_lines+=(0)
      diag_msgs+=("${BASH_REMATCH[2]}")
    fi
  done <<<"$output"

  local i j want have problems=()
  for i in "${!expect_lines[@]}"; do
    want=0
    for j in "${!expect_lines[@]}"; do
      [[ ${expect_lines[j]} == "${expect_lines[i]}" && ${expect_subs[j]} == "${expect_subs[i]}" ]] && ((want++))
    done
    have=0
    for j in "${!diag_lines[@]}"; do
      [[ ${diag_lines[j]} == "${expect_lines[i]}" && ${diag_msgs[j]} == *"${expect_subs[i]}"* ]] && ((have++))
    done
    if [[ $have -ne $want ]]; then
      problems+=("line ${expect_lines[i]}: expected $want diagnostic(s) containing '${expect_subs[i]}', got $have")
    fi
  done
  if [[ ${#diag_lines[@]} -ne ${#expect_lines[@]} ]]; then
    problems+=("flowrun printed ${#diag_lines[@]} diagnostic(s), the file expects ${#expect_lines[@]}")
  fi
  if [[ ${#problems[@]} -gt 0 ]]; then
    local joined
    joined=$(printf '%s; ' "${problems[@]}")
    reason="${joined%; }; output: ${output//$'\n'/ | }"
    return 1
  fi
  return 0
}

shopt -s nullglob
files=("$corpus"/*.toml)
for file in "${files[@]}"; do
  name=$(basename "$file")
  reason=""
  if check_file "$file"; then
    echo "ok $name"
    ((passed++))
  else
    echo "FAIL $name: $reason"
    ((failed++))
  fi
done

echo "$passed passed, $failed failed"
if [[ $failed -gt 0 || $passed -eq 0 ]]; then exit 1; fi
exit 0
