# shellcheck shell=bash
# What the scale-out tests compare between runs (tests/scale_out_test.sh, tests/slurm/slurm_test.sh); source it.
#   json FILE EXPR           a Python expression over the JSON file's content `s`
#   features_of OUT          the checksums of every feature file under OUT/features
#   mil_results_of OUT       mil_cv's results under OUT/mil: every file but those naming the output folder or the
#                            process's memory (summary.md, resolved_graph.toml), and metrics.json without memory figures
#   stage_stat OUT_SUMMARY STAGE FIELD   a stage's figure in a run_summary.json ("calls", "restored", ...)
json() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
features_of() { (cd "$1/features" && find . -name '*.h5' | sort | xargs sha256sum); }
mil_results_of() {
  (cd "$1/mil" && find . -type f ! -name summary.md ! -name resolved_graph.toml ! -name metrics.json | sort | xargs sha256sum)
  python3 -c "import json,sys
def strip(x):
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if 'resident' not in k}
    if isinstance(x, list): return [strip(v) for v in x]
    return x
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))" "$1/mil/metrics.json"
}
stage_stat() { json "$1" "[x['$3'] for x in s['stages'] if x['id']=='$2'][0]"; }
