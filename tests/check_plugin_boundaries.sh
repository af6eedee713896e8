#!/usr/bin/env bash
# Plugin boundaries (ARCHITECTURE.md principle 13; docs/write-a-plugin.md, "Public headers and one owner per
# resource"): greps the sources and fails, naming file:line, when
#   (a) OpenSlide's headers (<openslide/...>) are included outside plugins/slides/ (OpenSlide is the slides
#       plugin's);
#   (b) a file under plugins/<A>/ includes a header that is neither plugin A's own, nor a public header of a
#       plugin B (`histoflow/<B>/x.hpp`, found in plugins/<B>/include/histoflow/<B>/), nor a framework header
#       (`histoflow/x.hpp`); a plugin's public header (its include/ folder) includes a private one; a plugin's
#       tests (plugins/<A>/tests/) may also include the test support (`support/x.hpp`, in tests/support/);
#   (c) a file under tests/ or tools/ includes a plugin's private header (the framework's tests may include the
#       framework's own internals); framework/ includes a plugin header.
# Usage: check_plugin_boundaries.sh [SOURCE_DIR]   (default: the repository this script is in)
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || { echo "no such folder: $root"; exit 2; }

violations=0
fail() { echo "$1: $2"; violations=$((violations + 1)); }

# C and C++ sources under plugins/, framework/, tools/ and tests/.
mapfile -t files < <(find plugins framework tools tests -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \
  -o -name '*.cc' -o -name '*.c' -o -name '*.hh' -o -name '*.inl' -o -name '*.ipp' \) 2>/dev/null | sort)

framework_header() { [[ -f framework/include/$1 || -f framework/include/$1.in ]]; }  # version.hpp is generated
# "histoflow/<B>/x.hpp" that plugins/<B>/include/ holds: sets REPLY to B.
public_plugin_header() {
  [[ $1 =~ ^histoflow/([A-Za-z0-9_]+)/ && -f plugins/${BASH_REMATCH[1]}/include/$1 ]] || return 1
  REPLY=${BASH_REMATCH[1]}
}
# The header as found beside the including file (dots resolved): sets REPLY, fails when there is no such file.
beside() {
  local part parts out=()
  IFS=/ read -ra parts <<<"${1%/*}/$2"
  for part in "${parts[@]}"; do
    case $part in
      '' | .) ;;
      ..) ((${#out[@]})) && unset 'out[${#out[@]}-1]' ;;
      *) out+=("$part") ;;
    esac
  done
  local IFS=/
  REPLY="${out[*]}"
  [[ -f $REPLY ]]
}
# plugins/<B>/... outside plugins/<B>/include/: a private file of plugin B (sets REPLY to B).
private_plugin_file() {
  [[ $1 =~ ^plugins/([^/]+)/ && $1 != plugins/${BASH_REMATCH[1]}/include/* ]] || return 1
  REPLY=${BASH_REMATCH[1]}
}
# Where a header not found beside its includer lives among the plugins' private files (sets REPLY).
find_private() {
  REPLY=$(find plugins -path "*/$1" -not -path "plugins/*/include/*" -not -path "plugins/$2/*" 2>/dev/null | head -1)
  [[ -n $REPLY ]]
}

while IFS=$'\t' read -r file line delimiter header; do
  at="$file:$line"
  # (a) OpenSlide outside the slides plugin.
  if [[ $delimiter == '<' && $header == openslide* && $file != plugins/slides/* ]]; then
    fail "$at" "includes <$header>: OpenSlide belongs to the slides plugin; read slides through \"histoflow/slides/slide_reader.hpp\""
    continue
  fi
  [[ $delimiter == '<' && $header != histoflow/* ]] && continue  # the standard library, third-party libraries

  case $file in
    plugins/*)
      # (b) A plugin: its own files, other plugins' public headers, framework headers.
      plugin=${file#plugins/}
      plugin=${plugin%%/*}
      if [[ $header == histoflow/* ]]; then
        framework_header "$header" || public_plugin_header "$header" ||
          fail "$at" "includes \"$header\": neither a framework header (framework/include/) nor a plugin's public header (plugins/<name>/include/histoflow/<name>/)"
      elif [[ $file == plugins/$plugin/include/* ]]; then
        fail "$at" "public header includes \"$header\": a public header may include only public headers (\"histoflow/...\")"
      elif beside "$file" "$header"; then
        where=$REPLY
        if [[ $where != plugins/$plugin/* ]]; then
          if private_plugin_file "$where"; then
            fail "$at" "includes \"$header\" ($where), a private header of plugin '$REPLY': include its public headers (\"histoflow/$REPLY/...\") only"
          else
            fail "$at" "includes \"$header\" ($where), which is not a file of plugin '$plugin'"
          fi
        fi
      elif [[ -f plugins/$plugin/$header ]]; then
        :  # the plugin folder is its own private include directory
      elif [[ $file == plugins/$plugin/tests/* && $header == support/* && -f tests/$header ]]; then
        :  # a plugin's tests use the test support
      elif find_private "$header" "$plugin" && private_plugin_file "$REPLY"; then
        fail "$at" "includes \"$header\", a private header of plugin '$REPLY': include its public headers (\"histoflow/$REPLY/...\") only"
      else
        fail "$at" "includes \"$header\", which is not a file of plugin '$plugin' (plugins/$plugin/)"
      fi
      ;;
    framework/*)
      # (c) The framework never includes a plugin.
      if public_plugin_header "$header"; then
        fail "$at" "includes \"$header\": the framework never includes a plugin (plugin '$REPLY')"
      elif beside "$file" "$header" && [[ $REPLY == plugins/* ]]; then
        fail "$at" "includes \"$header\" ($REPLY): the framework never includes a plugin"
      fi
      ;;
    *)
      # (c) Tests and tools: framework headers, plugins' public headers, files of their own.
      if [[ $header == histoflow/* ]]; then
        framework_header "$header" || public_plugin_header "$header" ||
          fail "$at" "includes \"$header\": neither a framework header nor a plugin's public header"
      elif beside "$file" "$header"; then
        where=$REPLY
        private_plugin_file "$where" &&
          fail "$at" "includes \"$header\" ($where), a private header of plugin '$REPLY': include \"histoflow/$REPLY/...\" only, or move the test beside the plugin (plugins/$REPLY/tests/)"
      elif [[ $file == tests/* && $header == support/* && -f tests/$header ]]; then
        :  # the test support
      elif [[ $file == tests/* && -f framework/src/$header ]]; then
        :  # the framework's tests of its internals
      elif find_private "$header" "" && private_plugin_file "$REPLY"; then
        fail "$at" "includes \"$header\", a private header of plugin '$REPLY': include \"histoflow/$REPLY/...\" only, or move the test beside the plugin (plugins/$REPLY/tests/)"
      else
        fail "$at" "includes \"$header\", which is found neither beside it nor among the framework's and plugins' public headers"
      fi
      ;;
  esac
done < <(grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "${files[@]}" |
           sed -E 's/^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]*)[>"].*$/\1\t\2\t\3\t\4/')

if ((violations > 0)); then
  echo "$violations plugin boundary violation(s)"
  exit 1
fi
echo "plugin boundaries: ok (${#files[@]} files)"
